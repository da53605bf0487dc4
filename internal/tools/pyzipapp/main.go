// Command pyzipapp packs a Python plugin with wpm's Python SDK into one
// executable zipapp run by Debian's /usr/bin/python3 (the interpreter that
// sees python3-grpcio and python3-protobuf), as make build does:
//
//	go run ./internal/tools/pyzipapp SRC OUT
//
// SRC is the plugin's folder (its __main__.py and other .py files); the
// SDK is sdk/python/wpm_plugin. A zipapp is a shebang line followed by a
// zip archive, so no Python is needed to build it, and the one file gets
// a checksum as a Go plugin does.
package main

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Interpreter is the zipapp's interpreter.
const Interpreter = "/usr/bin/python3"

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: pyzipapp SRC OUT")
		os.Exit(2)
	}
	if err := pack(os.Args[1], os.Args[2], filepath.Join("sdk", "python", "wpm_plugin")); err != nil {
		fmt.Fprintln(os.Stderr, "pyzipapp:", err)
		os.Exit(1)
	}
}

// pack writes the zipapp of the plugin in src, with the SDK in sdk, to out.
func pack(src, out, sdk string) error {
	var buf bytes.Buffer
	buf.WriteString("#!" + Interpreter + "\n")
	zw := zip.NewWriter(&buf)
	if err := add(zw, src, ""); err != nil {
		return err
	}
	if err := add(zw, sdk, "wpm_plugin/"); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(src, "__main__.py")); err != nil {
		return fmt.Errorf("%s has no __main__.py: %w", src, err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// add stores the .py files of dir under prefix, in name order, with a
// fixed time so that the same sources make the same file.
func add(zw *zip.Writer, dir, prefix string) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.py"))
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return fmt.Errorf("no .py files in %s", dir)
	}
	sort.Strings(names)
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: prefix + filepath.Base(name), Method: zip.Deflate})
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
