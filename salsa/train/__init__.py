"""The harness, in the order a run meets it: runner (the entry `run`, and the Job that trains a run and ends it
with a status), preflight (the checks before anything is loaded or written), ownership (claiming the run
directory), build (data, network, optimizer, training state), loop (the training loop), summary (summary.json),
checkpoint, rundir (the writers of the record files), environment (the numerics and environment record), loggers
(the W&B mirror), distributed, optimizers (building a catalogue entry), schema and keys (the config's checks).
What the run directory promises, torch-free, is salsa.contract."""
