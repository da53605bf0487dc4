package main

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"text/template"

	"github.com/spf13/pflag"
)

// newUsage is wpm new's usage after its first line.
const newUsage = `Writes a plugin that builds, passes wpm plugin check, and has a test:
  go (default)  main.go (shared.Serve, shared.ParseObject, shared.Progress)
                and main_test.go; in plugins/NAME of this checkout, where
                make build builds it; with --dir outside the checkout also a
                go.mod whose replace points at the checkout (wpm's module is
                not published)
  python        __main__.py (wpm_plugin.serve) and test_NAME.py (unittest);
                in examples/plugins/NAME, where make build packs it
  node          NAME.js in the Node.js WorkerPoolManager protocol and
                NAME.test.js (node:test); --dir is required

Without --dir, the working directory must be in wpm's checkout. The
checkout is --wpm-module, else the one holding the working directory, else
the one this binary was built from (recorded unless built with -trimpath).
NAME is letters, digits, - and _. Nothing is overwritten.

Exit status: 0 written; 1 a file could not be written; 2 wrong flags or
arguments, a bad NAME, or a file that exists already (nothing is written).`

// wpmModule is wpm's module path.
const wpmModule = "github.com/wpmdev/wpm"

//go:embed templates
var newTemplates embed.FS

// pluginName is what NAME may be.
var pluginName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// newFile is one file to write: its path and its template.
type newFile struct {
	path, template string
}

// newData is what the templates fill in.
type newData struct {
	Name       string
	GoVersion  string // the go line of wpm's go.mod
	ModuleRoot string // wpm's checkout, absolute
	PyModule   string // Name as a Python identifier
	PyTest     string // the Python test's file name
	PyDir      string // the plugin's folder, as pyzipapp takes it from the checkout
	PyOut      string // the zipapp, as pyzipapp writes it from the checkout
	SDKPath    string // the Python SDK, relative to the plugin's folder when inside the checkout
}

func runNew(args []string, e env) int {
	flags := pflag.NewFlagSet("new", pflag.ContinueOnError)
	lang := flags.String("lang", "go", "the plugin's language: go, python or node")
	dir := flags.String("dir", "", "the folder to write the plugin in (go: plugins/NAME, python: examples/plugins/NAME of the checkout; node: required)")
	module := flags.String("wpm-module", "", "wpm's checkout, for a Go plugin's replace and the Python SDK (default: found, see above)")
	if st, done := parseFlags(flags, lookup("new"), args, e); done {
		return st
	}
	if flags.NArg() != 2 || flags.Arg(0) != "plugin" {
		fmt.Fprintf(e.stderr, "wpm new: name what to make and its name, like: wpm new plugin greet\n")
		return exitUsage
	}
	name := flags.Arg(1)
	if !pluginName.MatchString(name) {
		fmt.Fprintf(e.stderr, "wpm new plugin: bad name %q: use letters, digits, - and _ (up to 64, starting with a letter or digit)\n", name)
		return exitUsage
	}
	if *lang != "go" && *lang != "python" && *lang != "node" {
		fmt.Fprintf(e.stderr, "wpm new plugin: --lang %q: choose go, python or node\n", *lang)
		return exitUsage
	}
	cwd, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(e.stderr, "wpm new plugin: %v\n", err)
		return exitFailed
	}
	root, inCheckout, err := findCheckout(*module, cwd)
	if err != nil {
		fmt.Fprintf(e.stderr, "wpm new plugin: %v\n", err)
		return exitUsage
	}

	// Where the plugin goes.
	target := *dir
	if target == "" {
		switch {
		case *lang == "node":
			fmt.Fprintln(e.stderr, "wpm new plugin: --lang node needs --dir: the folder of your worker scripts (node.scriptsDir)")
			return exitUsage
		case !inCheckout:
			fmt.Fprintf(e.stderr, "wpm new plugin: the working directory is not in wpm's checkout: name the plugin's folder with --dir\n")
			return exitUsage
		case *lang == "go":
			target = filepath.Join(root, "plugins", name)
		default:
			target = filepath.Join(root, "examples", "plugins", name)
		}
	}
	target, err = filepath.Abs(target)
	if err != nil {
		fmt.Fprintf(e.stderr, "wpm new plugin: --dir: %v\n", err)
		return exitUsage
	}
	insideRoot := root != "" && within(root, target)
	if *lang != "node" && root == "" {
		fmt.Fprintf(e.stderr, "wpm new plugin: can not find wpm's checkout (a %s plugin needs its %s): run this inside it, or name it with --wpm-module PATH\n",
			*lang, map[string]string{"go": "module", "python": "SDK and pyzipapp"}[*lang])
		return exitUsage
	}

	d := newData{Name: name, ModuleRoot: root}
	var files []newFile
	switch *lang {
	case "go":
		files = []newFile{{"main.go", "go/main.go.tmpl"}, {"main_test.go", "go/main_test.go.tmpl"}}
		if !insideRoot {
			if d.GoVersion, err = goVersion(root); err != nil {
				fmt.Fprintf(e.stderr, "wpm new plugin: %v\n", err)
				return exitUsage
			}
			files = append(files, newFile{"go.mod", "go/go.mod.tmpl"}, newFile{"go.sum", ""})
		}
	case "python":
		d.PyModule = strings.ReplaceAll(name, "-", "_")
		d.PyTest = "test_" + d.PyModule + ".py"
		d.SDKPath = filepath.Join(root, "sdk", "python")
		if insideRoot {
			d.SDKPath, _ = filepath.Rel(target, d.SDKPath)
			d.PyDir, _ = filepath.Rel(root, target)
			d.PyOut = filepath.Join("bin", "plugins", name)
		} else {
			d.PyDir, d.PyOut = target, filepath.Join(target, "bin", name)
		}
		files = []newFile{{"__main__.py", "python/main.py.tmpl"}, {d.PyTest, "python/test.py.tmpl"}}
	case "node":
		files = []newFile{{name + ".js", "node/worker.js.tmpl"}, {name + ".test.js", "node/test.js.tmpl"}}
	}

	// Nothing is written when any file is there already.
	var exist []string
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(target, f.path)); err == nil || !errors.Is(err, fs.ErrNotExist) {
			exist = append(exist, display(cwd, filepath.Join(target, f.path)))
		}
	}
	if len(exist) > 0 {
		fmt.Fprintf(e.stderr, "wpm new plugin: not overwriting what exists: %s; nothing was written (remove it, or choose another name or --dir)\n", strings.Join(exist, ", "))
		return exitUsage
	}
	contents := make([][]byte, len(files))
	for i, f := range files {
		if contents[i], err = render(f, d); err != nil {
			fmt.Fprintf(e.stderr, "wpm new plugin: %v\n", err)
			return exitFailed
		}
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		fmt.Fprintf(e.stderr, "wpm new plugin: %v\n", err)
		return exitFailed
	}
	for i, f := range files {
		if err := writeNew(filepath.Join(target, f.path), contents[i]); err != nil {
			fmt.Fprintf(e.stderr, "wpm new plugin: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(e.stdout, "wrote %s\n", display(cwd, filepath.Join(target, f.path)))
	}
	fmt.Fprintf(e.stdout, "\nNext:\n")
	for _, l := range nextSteps(*lang, name, target, root, insideRoot, cwd, d) {
		fmt.Fprintf(e.stdout, "  %s\n", l)
	}
	return exitOK
}

// render fills in f's template; go.sum (no template) is a copy of the
// checkout's, so the plugin's module verifies wpm's dependencies without
// asking a checksum database.
func render(f newFile, d newData) ([]byte, error) {
	if f.template == "" {
		b, err := os.ReadFile(filepath.Join(d.ModuleRoot, "go.sum"))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return b, err
	}
	t, err := template.ParseFS(newTemplates, "templates/"+f.template)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeNew writes a file that must not exist yet.
func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// nextSteps are the commands that build, test and check the plugin.
func nextSteps(lang, name, target, root string, insideRoot bool, cwd string, d newData) []string {
	wpm := "wpm"
	var out []string
	inRoot := func(cmds ...string) {
		if cwd != root {
			out = append(out, "cd "+root)
		}
		out = append(out, cmds...)
	}
	switch {
	case lang == "go" && insideRoot:
		rel, _ := filepath.Rel(root, target)
		build := "make build                                     # bin/wpm and bin/plugins/" + name
		if filepath.Dir(rel) != "plugins" {
			build = "CGO_ENABLED=0 go build -o bin/plugins/" + name + " ./" + rel
		}
		inRoot(
			"go test ./"+rel+"/",
			build,
			"bin/wpm plugin check "+name+" --plugins-dir bin/plugins",
		)
		if filepath.Dir(rel) == "plugins" {
			out = append(out, "# and name it in Plugins of internal/testkit/testkit.go: make test checks every plugin under plugins/")
		}
	case lang == "go":
		out = append(out,
			"cd "+display(cwd, target),
			"go mod tidy                                   # the requirements of wpm's shared package, from the checkout's go.mod",
			"go test ./...",
			"CGO_ENABLED=0 go build -o bin/"+name+" .",
			wpm+" plugin check "+name+" --plugins-dir bin",
		)
	case lang == "python" && insideRoot:
		inRoot(
			"/usr/bin/python3 "+filepath.Join(d.PyDir, d.PyTest),
			"go run ./internal/tools/pyzipapp "+d.PyDir+" "+d.PyOut+"   # make build packs examples/plugins/* too",
			"bin/wpm plugin check "+name+" --plugins-dir bin/plugins",
		)
	case lang == "python":
		out = append(out,
			"/usr/bin/python3 "+display(cwd, filepath.Join(target, d.PyTest)),
			"(cd "+root+" && go run ./internal/tools/pyzipapp "+target+" "+d.PyOut+")",
			wpm+" plugin check "+name+" --plugins-dir "+display(cwd, filepath.Dir(d.PyOut)),
		)
	default:
		out = append(out,
			"node --test "+display(cwd, filepath.Join(target, name+".test.js")),
			wpm+" plugin check "+name+".js --scripts-dir "+display(cwd, target),
			"# in wpm's config: node.scriptsDir: "+display(cwd, target)+", or a pool's script: "+display(cwd, filepath.Join(target, name+".js")),
		)
	}
	return out
}

// findCheckout returns wpm's checkout: flag when set (it must be one),
// else the module holding cwd when it is wpm's, else the folder this
// binary was built from when it still holds wpm's module. inCheckout
// says whether cwd is inside the checkout found. root is "" when none is
// found.
func findCheckout(flag, cwd string) (root string, inCheckout bool, err error) {
	if flag != "" {
		abs, err := filepath.Abs(flag)
		if err != nil {
			return "", false, fmt.Errorf("--wpm-module: %w", err)
		}
		if !isWPMModule(abs) {
			return "", false, fmt.Errorf("--wpm-module %s: no go.mod of module %s there", flag, wpmModule)
		}
		return abs, within(abs, cwd), nil
	}
	for d := cwd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			if isWPMModule(d) {
				return d, true, nil
			}
			break // another module's folder
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	if d := builtFrom(); d != "" {
		return d, within(d, cwd), nil
	}
	return "", false, nil
}

// builtFrom returns the checkout this binary was compiled from, when its
// source paths are recorded (no -trimpath) and it still holds wpm's module.
func builtFrom() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	d := filepath.Dir(filepath.Dir(filepath.Dir(file))) // …/cmd/wpm/new.go
	if !isWPMModule(d) {
		return ""
	}
	return d
}

// isWPMModule reports whether dir has the go.mod of wpm's module.
func isWPMModule(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == wpmModule
		}
	}
	return false
}

// goVersion returns the go line of the checkout's go.mod.
func goVersion(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if fields := strings.Fields(l); len(fields) == 2 && fields[0] == "go" {
			return fields[1], nil
		}
	}
	return "", fmt.Errorf("%s has no go line", filepath.Join(root, "go.mod"))
}

// within reports whether path is dir or inside it.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// display returns path relative to cwd when it is inside it, else as it is.
func display(cwd, path string) string {
	if within(cwd, path) {
		if rel, err := filepath.Rel(cwd, path); err == nil {
			return rel
		}
	}
	return path
}
