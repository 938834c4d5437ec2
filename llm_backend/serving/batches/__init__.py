"""The Batch API served here, over the Files store: ``service.py`` (the operations' rules),
``input.py`` (the input file checked), ``runner.py`` (leases, scheduling, running lines),
``output.py`` (output lines and files). docs/BATCHES.md tells the whole story."""
