package testkit

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// Span is a span an [OTLPReceiver] received, its ids in hex.
type Span struct {
	Service      string // its resource's service.name
	Instance     string // its resource's service.instance.id
	Name         string
	Kind         string // SPAN_KIND_SERVER, …
	TraceID      string
	SpanID       string
	ParentSpanID string // "" for a root
	Attrs        map[string]string
	StatusError  bool
}

// OTLPReceiver is an OTLP/HTTP collector for a test: it takes POST
// /v1/traces (protobuf, gzipped or not) and keeps the spans. Its URL is
// the base URL an exporter is given (tracing.endpoint).
type OTLPReceiver struct {
	URL string

	mu    sync.Mutex
	spans []Span
}

// NewOTLPReceiver starts a receiver that stops when the test ends.
func NewOTLPReceiver(t testing.TB) *OTLPReceiver {
	r := &OTLPReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

func (r *OTLPReceiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.NotFound(w, req)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var export collectorpb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &export); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []Span
	for _, rs := range export.GetResourceSpans() {
		service, instance := "", ""
		for _, kv := range rs.GetResource().GetAttributes() {
			switch kv.GetKey() {
			case "service.name":
				service = kv.GetValue().GetStringValue()
			case "service.instance.id":
				instance = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := Span{Service: service, Instance: instance, Name: s.GetName(), Kind: s.GetKind().String(),
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					Attrs: map[string]string{}, StatusError: s.GetStatus().GetCode() == 2}
				if p := s.GetParentSpanId(); len(p) > 0 {
					sp.ParentSpanID = hex.EncodeToString(p)
				}
				for _, kv := range s.GetAttributes() {
					switch v := kv.GetValue().GetValue().(type) {
					case *commonpb.AnyValue_StringValue:
						sp.Attrs[kv.GetKey()] = v.StringValue
					case *commonpb.AnyValue_IntValue:
						sp.Attrs[kv.GetKey()] = strconv.FormatInt(v.IntValue, 10)
					case *commonpb.AnyValue_BoolValue:
						sp.Attrs[kv.GetKey()] = strconv.FormatBool(v.BoolValue)
					default:
						sp.Attrs[kv.GetKey()] = kv.GetValue().String()
					}
				}
				got = append(got, sp)
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
	out, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// Spans returns the spans received so far.
func (r *OTLPReceiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

// WaitSpan waits up to d for a span that match accepts and returns it;
// ok is false when none came.
func (r *OTLPReceiver) WaitSpan(d time.Duration, match func(Span) bool) (Span, bool) {
	deadline := time.Now().Add(d)
	for {
		for _, s := range r.Spans() {
			if match(s) {
				return s, true
			}
		}
		if time.Now().After(deadline) {
			return Span{}, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
