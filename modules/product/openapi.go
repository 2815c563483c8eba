package product

// OpenAPIFragment returns the module's fragment of the OpenAPI document
// without building the module, for a process that describes the module's
// endpoints without running it (modshop gateway).
func OpenAPIFragment() []byte { return openAPI }
