"""What a run directory and the optimizer catalogue promise, readable without torch or the training code.

- runid: a run's identity, the hash of its config, and so its directory
- files: the fixed file names, opened only as plain files (never a link or device), JSON written whole, damaged files
  moved aside, what a checkpoint's counts require
- verify: what a finished run vouches for (its files, its summary's digest, its directory named by its config), and
  its check (`python -m salsa.contract.verify <runs dir>`)
- catalogue: the reader of conf/optimizer

Training, the analysis, the sweeps and the launchers' failure callback read it (docs/run-directory.md); it imports
neither torch nor salsa.train.
"""
