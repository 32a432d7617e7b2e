"""Tools that import the papers (shipping trained networks, the gallery, the docs figures); common/ never does."""
