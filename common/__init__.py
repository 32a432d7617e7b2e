"""Paper-independent helpers shared by the five paper folders (DESIGN.md §1).

- ``faces``      built-in procedural faces (parameters, 3D pose, six styles)
- ``synthetic``  dataset builders on those faces, and the hidden degradation pipeline
- ``data``       image-folder and paired-folder loaders, in-memory batches
- ``metrics``    Fréchet distance / FID, LPIPS diversity, PSNR, SSIM, face-detection rate
- ``features``   feature extractors and distances for the metrics (Inception, LPIPS)
- ``synthnet``   the small network trained on the synthetic faces (offline FID, pose/gaze error)
- ``plots``      image grids, loss curves, bar charts, markdown tables
- ``run``        device, seeding, run folders, CSV log, checkpoints, Ctrl-C, non-finite guard
"""
