"""Media input and output. Only this package imports PyAV."""
