"""petbind's numerical methods and nipype workflows (one module per pipeline stage)."""
