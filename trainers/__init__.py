"""hopgym subpackage."""
