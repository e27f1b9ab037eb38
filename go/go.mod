module wasabi.dev/go

go 1.21
