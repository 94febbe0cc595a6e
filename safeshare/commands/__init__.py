"""The top-level ``safeshare`` commands, one file each (the sandbox's two share one), registered
on the command line in ``safeshare.cli``; ``options`` and ``plumbing`` hold what they share."""
