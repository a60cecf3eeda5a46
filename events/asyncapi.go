package events

import _ "embed"

// AsyncAPI is the AsyncAPI 3.0.0 document of every channel this service
// receives on and sends to, with one example per message. asyncapi_test.go
// keeps it in agreement with the catalog and the payload structs.
//
//go:embed asyncapi.yaml
var AsyncAPI []byte
