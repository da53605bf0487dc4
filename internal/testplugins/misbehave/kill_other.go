//go:build !unix

package main

import "os"

// killSelf kills this process the platform's hardest way.
func killSelf() error {
	self, err := os.FindProcess(os.Getpid())
	if err != nil {
		return err
	}
	return self.Kill()
}
