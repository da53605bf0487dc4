package main

import (
	"log"

	"github.com/hashicorp/go-hclog"
)

// captureStdLog sends what libraries write through the standard log
// package into logger, at the level their "[ERR]"/"[WARN]"/"[DEBUG]"
// prefixes name (info otherwise), in wpm's configured format: go-plugin's
// copyStream and net/rpc log that way, and a plain line among JSON lines
// would break a log shipper (issue 14). It returns a function that puts
// the previous output and flags back. yamux does not use the standard log
// package; host keeps it quiet by the connection it runs on.
func captureStdLog(logger hclog.Logger) (restore func()) {
	out, flags, prefix := log.Writer(), log.Flags(), log.Prefix()
	log.SetOutput(logger.Named("lib").StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true}))
	log.SetFlags(0)
	log.SetPrefix("")
	return func() {
		log.SetOutput(out)
		log.SetFlags(flags)
		log.SetPrefix(prefix)
	}
}
