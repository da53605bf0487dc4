package host

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// PluginInfo describes one plugin binary in the plugins directory.
type PluginInfo struct {
	Name      string
	Path      string // absolute, symlinks resolved
	SizeBytes int64
	ModTime   time.Time
	SHA256    string // hex
	// Protocol is how wpm talks to the plugin, as its file tells without
	// starting it: ProtocolNetRPC or ProtocolGRPC (a plugin's handshake
	// decides when it starts), or ProtocolNode for a script in the
	// scripts directory.
	Protocol string
	// Pools lists the pools that run this plugin.
	Pools []string
}

// The protocols of PluginInfo.
const (
	// ProtocolNetRPC is a Go plugin built with wpm's shared package:
	// go-plugin's net/rpc, pipelining included.
	ProtocolNetRPC = "netrpc"
	// ProtocolGRPC is any other plugin (a script, another binary):
	// go-plugin's gRPC protocol with wpm's task service
	// (proto/wpm/task/v1/task.proto), as sdk/python speaks it.
	ProtocolGRPC = "grpc"
	// ProtocolNode is a Node.js worker script, which node runs with its
	// IPC channel (the Node.js WorkerPoolManager's protocol).
	ProtocolNode = "node"
)

// wpmModule is the module a Go plugin of wpm is built in or depends on.
const wpmModule = "github.com/wpmdev/wpm"

// fileProtocol tells a plugin's protocol from its file: a Go binary whose
// build info lists wpm's module (as the main module or a dependency)
// speaks net/rpc; anything else (a script with #!, another binary) gRPC.
func fileProtocol(path string) string {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return ProtocolGRPC
	}
	if bi.Main.Path == wpmModule {
		return ProtocolNetRPC
	}
	for _, d := range bi.Deps {
		if d.Path == wpmModule || d.Replace != nil && d.Replace.Path == wpmModule {
			return ProtocolNetRPC
		}
	}
	return ProtocolGRPC
}

// protocol is the protocol of a file the catalog lists, as hashed in h.
func (c *catalog) protocol(h cachedHash) string {
	if c.scripts {
		return ProtocolNode
	}
	return h.protocol
}

// catalog finds plugin binaries in one directory and refuses everything
// else. It is safe for concurrent use.
type catalog struct {
	dir     string // absolute, symlinks resolved
	scripts bool   // holds Node.js worker scripts (*.js) instead of binaries

	mu     sync.Mutex
	hashes map[string]cachedHash // by path
}

type cachedHash struct {
	size     int64
	modTime  time.Time
	identity string // inode and change time where the platform has them
	sum      string
	protocol string
}

func newCatalog(dir string) (*catalog, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("plugins directory %q: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("plugins directory %q: %w (run make build, or set plugins.dir)", dir, err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil, fmt.Errorf("plugins directory %q: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("plugins directory %q is not a directory", dir)
	}
	return &catalog{dir: real, hashes: make(map[string]cachedHash)}, nil
}

// resolve returns the path of the plugin called name. name may be a plain
// name or a relative path whose last element is the name (as the Node.js
// seed's "./workers/cpuload"); absolute paths, "..", and anything that is
// not an executable regular file inside the directory are refused.
func (c *catalog) resolve(name string) (string, error) {
	base, err := pluginName(name)
	if err != nil {
		return "", err
	}
	path := filepath.Join(c.dir, base)
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", c.unknown(name)
	}
	if filepath.Dir(real) != c.dir {
		return "", fmt.Errorf("%w: %q leads outside the plugins directory", ErrUnknownPlugin, name)
	}
	fi, err := os.Stat(real)
	if err != nil || !c.runnable(base, fi) {
		return "", c.unknown(name)
	}
	return real, nil
}

// pluginName reduces a requested name to a plain file name, or refuses it.
func pluginName(name string) (string, error) {
	refuse := func(why string) (string, error) {
		return "", fmt.Errorf("%w: %q %s; name a plugin in the plugins directory, like \"cpuload\"", ErrUnknownPlugin, name, why)
	}
	switch {
	case name == "":
		return refuse("is empty")
	case strings.ContainsAny(name, "\\\x00"):
		return refuse("holds a backslash or NUL")
	case filepath.IsAbs(name):
		return refuse("is an absolute path")
	}
	parts := strings.Split(name, "/")
	if slices.Contains(parts, "..") {
		return refuse("climbs out with ..")
	}
	base := parts[len(parts)-1]
	if !validName(base) {
		return refuse("is not a plain file name")
	}
	return base, nil
}

// runnable reports whether the file called name, described by fi, is
// one the catalog runs: an executable regular file, or in a scripts
// directory a regular file named *.js.
func (c *catalog) runnable(name string, fi os.FileInfo) bool {
	if !fi.Mode().IsRegular() {
		return false
	}
	if c.scripts {
		return IsScriptName(name)
	}
	return fi.Mode().Perm()&0o111 != 0
}

// IsScriptName reports whether name (a file name, or a path whose last
// element counts) is a Node.js worker script's: *.js, *.cjs or *.mjs.
func IsScriptName(name string) bool {
	return strings.HasSuffix(name, ".js") || strings.HasSuffix(name, ".cjs") || strings.HasSuffix(name, ".mjs")
}

// resolvePool returns the path of what pool pc runs: its plugin, found
// here, or its script. The error starts with the key at fault.
func (c *catalog) resolvePool(pc PoolConfig) (string, error) {
	if pc.Script == "" {
		path, err := c.resolve(pc.Plugin)
		if err != nil {
			return "", fmt.Errorf("plugin: %w", err)
		}
		return path, nil
	}
	real, err := filepath.EvalSymlinks(pc.Script)
	if err == nil {
		real, err = filepath.Abs(real)
	}
	if err != nil {
		return "", fmt.Errorf("script: %w: worker script %q: %w (a relative path is relative to the config file's folder)", ErrUnknownPlugin, pc.Script, err)
	}
	if fi, err := os.Stat(real); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("script: %w: worker script %q is not a regular file", ErrUnknownPlugin, pc.Script)
	}
	return real, nil
}

func (c *catalog) unknown(name string) error {
	names, _ := c.names()
	return fmt.Errorf("%w: no plugin %q in %s; known plugins: %s", ErrUnknownPlugin, name, c.dir, strings.Join(names, ", "))
}

// names lists the names resolve accepts, sorted: executable regular files
// in the directory, and symlinks to such files that stay inside it. A
// symlink leading outside is never run, so it is not listed either.
func (c *catalog) names() ([]string, error) {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("read plugins directory: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !validName(e.Name()) {
			continue
		}
		// Not resolve itself: it calls names to list the known plugins.
		real, err := filepath.EvalSymlinks(filepath.Join(c.dir, e.Name()))
		if err != nil || filepath.Dir(real) != c.dir {
			continue
		}
		fi, err := os.Stat(real)
		if err != nil || !c.runnable(e.Name(), fi) {
			continue
		}
		names = append(names, e.Name())
	}
	return names, nil
}

// list describes every plugin in the directory.
func (c *catalog) list() ([]PluginInfo, error) {
	names, err := c.names()
	if err != nil {
		return nil, err
	}
	infos := make([]PluginInfo, 0, len(names))
	for _, name := range names {
		path, err := c.resolve(name)
		if err != nil {
			continue
		}
		fi, err := os.Stat(path)
		if err != nil {
			continue
		}
		h, err := c.describe(path, fi)
		if err != nil {
			continue
		}
		infos = append(infos, PluginInfo{Name: name, Path: path, SizeBytes: fi.Size(), ModTime: fi.ModTime().UTC(), SHA256: h.sum, Protocol: c.protocol(h)})
	}
	return infos, nil
}

// sha256 returns the file's digest, cached while its size, modification
// time, inode and change time stay the same (the last two can not be set
// back by a user).
func (c *catalog) sha256(path string, fi os.FileInfo) (string, error) {
	h, err := c.describe(path, fi)
	return h.sum, err
}

// describe returns the file's digest and protocol, cached as sha256 says.
func (c *catalog) describe(path string, fi os.FileInfo) (cachedHash, error) {
	c.mu.Lock()
	h, ok := c.hashes[path]
	c.mu.Unlock()
	if ok && h.size == fi.Size() && h.modTime.Equal(fi.ModTime()) && h.identity == fileIdentity(fi) {
		return h, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return cachedHash{}, err
	}
	defer f.Close()
	d := sha256.New()
	if _, err := io.Copy(d, f); err != nil {
		return cachedHash{}, fmt.Errorf("read %s: %w", path, err)
	}
	h = cachedHash{size: fi.Size(), modTime: fi.ModTime(), identity: fileIdentity(fi),
		sum: hex.EncodeToString(d.Sum(nil)), protocol: fileProtocol(path)}
	c.mu.Lock()
	c.hashes[path] = h
	c.mu.Unlock()
	return h, nil
}

// verify checks the binary at path against the pinned hex SHA-256 want.
func (c *catalog) verify(path, want string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnknownPlugin, err)
	}
	got, err := c.sha256(path, fi)
	if err != nil {
		return fmt.Errorf("%w: checksum of %s: %w", ErrUnknownPlugin, path, err)
	}
	if !strings.EqualFold(got, want) {
		return fmt.Errorf("%w: %s has SHA-256 %s, but plugins.checksums pins %s; refusing to start it (replace the binary or update the checksum)",
			ErrUnknownPlugin, path, got, strings.ToLower(want))
	}
	return nil
}
