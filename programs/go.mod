module wasabi.dev/programs

go 1.21
