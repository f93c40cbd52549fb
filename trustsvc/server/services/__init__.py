"""gRPC service implementations, one module per service; each calls its library and nothing else."""
