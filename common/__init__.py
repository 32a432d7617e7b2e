"""Paper-independent helpers shared by the five paper folders (a library: it never imports a paper).

- ``faces``       built-in procedural faces (parameters, 3D pose, six styles)
- ``synthetic``   dataset builders on those faces, and the hidden degradation pipeline
- ``data``        image-folder and paired-folder loaders, in-memory batches
- ``metrics``     Fréchet distance / FID, diversity, PSNR, SSIM, sharpness, face-detection rate
- ``features``    feature extractors and distances for the metrics (Inception, LPIPS)
- ``synthnet``    the small network trained on the synthetic faces (offline FID, pose/gaze error)
- ``plots``       image grids, loss curves, bar charts, markdown tables
- ``csvlog``      log.csv, written as a run goes and read back for figures
- ``device``      the device, seeds and the fast path (bf16 autocast, channels_last)
- ``cli``         the shared flags, presets, the --resume check and one-sentence errors
- ``folders``     run folders, their locks, atomic writes
- ``checkpoints`` checkpoints written atomically, read safely; the one loader of run folders
- ``loop``        ``Run``: the bookkeeping of a training loop (log.csv, finiteness, checkpoints, Ctrl-C)
- ``ema``         ``--ema``: a moving average of the generator's weights
- ``distributed`` torchrun: process group, rank-0 writes, per-process seeds, wrapping
- ``manifest``    where shipped networks live and the sha256 their manifest records
"""
