"""tinyir backends: lowering to a runtime's op set and code generation."""
