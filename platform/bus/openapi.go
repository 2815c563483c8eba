package bus

import _ "embed"

//go:embed openapi.yaml
var openAPI []byte

// OpenAPI returns the bus admin endpoints' fragment of the OpenAPI document.
func OpenAPI() []byte { return openAPI }
