//go:build !unix

package shared

// dieWithGroupOnTerm does nothing where there are no process groups.
func dieWithGroupOnTerm() {}
