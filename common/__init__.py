"""Paper-independent helpers shared by the five paper folders.

- ``faces``      built-in procedural faces (parameters, 3D pose, six styles)
- ``synthetic``  dataset builders on those faces, and the hidden degradation pipeline
- ``data``       image-folder and paired-folder loaders, in-memory batches
- ``metrics``    Fréchet distance / FID, LPIPS diversity, PSNR, SSIM, face-detection rate
- ``features``   feature extractors and distances for the metrics (Inception, LPIPS)
- ``synthnet``   the small network trained on the synthetic faces (offline FID, pose/gaze error)
- ``plots``      image grids, loss curves, bar charts, markdown tables
- ``run``        device and the bf16 fast path, command lines and presets, safe checkpoints, ``load_run``
- ``loop``       ``Run``: the bookkeeping of a training loop (log.csv, finiteness, checkpoints, Ctrl-C)
- ``benchmark``  faces/s of the built-in faces; with ``--train``, each paper's training step in images/s
"""
