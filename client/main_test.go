package client_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wpmdev/wpm/client"
	"github.com/wpmdev/wpm/internal/testkit"
)

// The server every test and the Example share: bin/wpm serve, built once,
// with real plugins, asynchronous tasks on an embedded NATS and a token.
var (
	// serverURL is its base URL.
	serverURL string
	// callbackBase is the URL of a receiver of callbacks the server may
	// call, and callbacks receives the bodies POSTed to it.
	callbackBase string
	callbacks    = make(chan []byte, 16)
)

// token is the server's http.authToken.
const token = "client-test-token"

// serverConfig has a pool of each kind the tests need: CPU for the
// Example, M for tasks of the test plugin, ONE with one worker and no
// queue, to fill at will. %s is the callback receiver's URL.
const serverConfig = `
shutdown: {grace: 5s}
http: {authToken: ` + token + `}
async: {callbackAllow: ["%s/cb"]}
pools:
  - {name: CPU, plugin: cpuload, workers: 1}
  - {name: M, plugin: misbehave, workers: 2, queueLimit: 8}
  - {name: ONE, plugin: misbehave, workers: 1, queueLimit: -1}
`

func TestMain(m *testing.M) {
	os.Exit(testkit.RunMainTeardown(m, func(root string) (func(), error) {
		bin := filepath.Join(root, "bin")
		if err := testkit.BuildPlugins(filepath.Join(bin, "plugins")); err != nil {
			return nil, err
		}
		wpm, err := testkit.BuildWPM(bin)
		if err != nil {
			return nil, err
		}
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			callbacks <- body
		}))
		callbackBase = receiver.URL
		srv, err := testkit.StartServe(wpm, filepath.Join(bin, "plugins"), root, fmt.Sprintf(serverConfig, receiver.URL))
		if err != nil {
			receiver.Close()
			return nil, err
		}
		serverURL = srv.URL
		return func() {
			if err := srv.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "stopping wpm serve: %v\n%s", err, srv.Logs.String())
			}
			receiver.Close()
		}, nil
	}))
}

// newClient returns a client of the shared server with its token.
func newClient(t *testing.T, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(serverURL, append([]client.Option{client.WithToken(token)}, opts...)...)
	require.NoError(t, err)
	return c
}
