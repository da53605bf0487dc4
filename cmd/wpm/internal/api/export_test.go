package api

import "github.com/labstack/echo/v4"

// Test-only access to the API's internals, for the package's external
// tests.

// OpenAPI returns the API's OpenAPI 3 document as JSON.
func OpenAPI() ([]byte, error) { return openAPIJSON() }

// Echo returns the echo instance, to list its routes.
func (s *Server) Echo() *echo.Echo { return s.echo }
