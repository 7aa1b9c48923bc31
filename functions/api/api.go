package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluicedb/sluice/infra/secrets"
	"github.com/sluicedb/sluice/infra/sigv4"
	"github.com/sluicedb/sluice/infra/store"
)

// maxBody caps a request body: the largest DMS request (table mappings and
// settings documents) stays far below it.
const maxBody = 4 << 20

// maxDrain bounds what is read and thrown away of a body above maxBody
// before the answer, so that the client, still sending, reads the 413
// instead of a connection reset. A body larger still gets the reset: the
// bound keeps a caller from making the server read without end.
const maxDrain = 64 << 20

const targetPrefix = "AmazonDMSv20160101."

// Control is what the API asks of whoever runs replicators, after it has
// recorded the change of status.
type Control interface {
	// Start begins the work of a replication whose status just became
	// initializing; it returns at once and moves the status on by itself
	// (or hands the replication to whoever will).
	Start(ctx context.Context, arn string) error
	// Stop asks the running replicator of a replication whose status just
	// became stopping to stop gracefully.
	Stop(ctx context.Context, arn string) error
	// Reload restarts the running replicator of a replication whose record
	// just got a ReloadTables request, so that it loads those tables again
	// and goes on; the status stays running.
	Reload(ctx context.Context, arn string) error
}

// Handler serves the DMS API (AWS JSON 1.1) and its REST aliases.
type Handler struct {
	Store    *store.Store
	Verifier *sigv4.Verifier
	// TrustIAM (SLUICE_API_AUTH=iam) takes requests that API Gateway's
	// AWS_IAM authorizer has verified, instead of checking a DMS signature:
	// the caller is in IAMCaller's header, which only the gateway sets.
	TrustIAM  bool
	IAMCaller string
	// Box seals endpoint passwords; nil when SLUICE_MASTER_KEY is not set,
	// and then only endpoints whose password lives in Secrets Manager (or
	// that have none) can be created.
	Box             *secrets.Box
	Region, Account string
	Control         Control
	Log             *slog.Logger
	Now             func() time.Time
}

type operation func(h *Handler, ctx context.Context, body []byte) (any, error)

var operations = map[string]operation{
	"CreateEndpoint":                     (*Handler).createEndpoint,
	"DescribeEndpoints":                  (*Handler).describeEndpoints,
	"ModifyEndpoint":                     (*Handler).modifyEndpoint,
	"DeleteEndpoint":                     (*Handler).deleteEndpoint,
	"CreateReplicationConfig":            (*Handler).createConfig,
	"DescribeReplicationConfigs":         (*Handler).describeConfigs,
	"ModifyReplicationConfig":            (*Handler).modifyConfig,
	"DeleteReplicationConfig":            (*Handler).deleteConfig,
	"StartReplication":                   (*Handler).startReplication,
	"StopReplication":                    (*Handler).stopReplication,
	"DescribeReplications":               (*Handler).describeReplications,
	"DescribeReplicationTableStatistics": (*Handler).describeTableStats,
	"ReloadReplicationTables":            (*Handler).reloadTables,
	"AddTagsToResource":                  (*Handler).addTags,
	"ListTagsForResource":                (*Handler).listTags,
	"RemoveTagsFromResource":             (*Handler).removeTags,
}

// fault is an error the API returns to the caller as a DMS fault.
type fault struct {
	code   string
	status int
	msg    string
}

func (f *fault) Error() string { return f.code + ": " + f.msg }

func newFault(code string, status int, format string, args ...any) *fault {
	return &fault{code: code, status: status, msg: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) *fault {
	return newFault("InvalidParameterValueException", http.StatusBadRequest, format, args...)
}

func combination(format string, args ...any) *fault {
	return newFault("InvalidParameterCombinationException", http.StatusBadRequest, format, args...)
}

func badState(format string, args ...any) *fault {
	return newFault("InvalidResourceStateFault", http.StatusBadRequest, format, args...)
}

func notFound(format string, args ...any) *fault {
	return newFault("ResourceNotFoundFault", http.StatusBadRequest, format, args...)
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC()
	}
	return time.Now().UTC()
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The span starts first and ends last, once the recovery below has
	// turned a panic into a fault.
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	w = sw
	ctx, span := startSpan(r)
	defer endSpan(span, sw)
	r = r.WithContext(ctx)
	defer func() {
		if p := recover(); p != nil {
			h.log().Error("panic serving a request", "panic", fmt.Sprint(p), "path", r.URL.Path)
			h.writeError(w, newFault("InternalFailure", http.StatusInternalServerError, "internal error"))
		}
	}()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		h.writeError(w, invalid("could not read the request body: %v", err))
		return
	}
	if len(body) > maxBody {
		// Closing a connection whose unread data sits in the kernel's
		// buffer resets it, and the client loses the answer: read the
		// rest first, and close the connection after the answer rather
		// than read another request after a body we did not parse.
		_, _ = io.CopyN(io.Discard, r.Body, maxDrain)
		w.Header().Set("Connection", "close")
		h.writeError(w, newFault("RequestEntityTooLarge", http.StatusRequestEntityTooLarge, "the request body is larger than %d bytes", maxBody))
		return
	}
	if err := h.authenticate(r, body); err != nil {
		h.writeError(w, newFault("AccessDeniedFault", http.StatusForbidden, "%v", err))
		return
	}
	if strings.HasPrefix(r.URL.Path, "/replications/") {
		h.serveREST(w, r, body)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		h.writeError(w, newFault("UnknownOperationException", http.StatusNotFound, "%s %s is not an operation: send AWS JSON 1.1 requests as POST / with X-Amz-Target, or use POST /replications/{id}/start|stop, GET /replications/{id}", r.Method, r.URL.Path))
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op, ok := operations[strings.TrimPrefix(target, targetPrefix)]
	if !ok || !strings.HasPrefix(target, targetPrefix) {
		h.writeError(w, newFault("UnknownOperationException", http.StatusBadRequest, "X-Amz-Target %q is not an operation this server knows: use %s<Operation>", clip(target), targetPrefix))
		return
	}
	h.respond(w, r.Context(), op, body)
}

// The attributes of the operations' spans: the conventions of the AWS SDK
// instrumentations, so a client's span and the server's match.
var (
	rpcSystem  = semconv.RPCSystemKey.String("aws-api")
	rpcService = semconv.RPCService("DatabaseMigrationService")
)

// otherOperation names a request that is not an operation, as the
// semantic conventions do.
const otherOperation = "_OTHER"

// startSpan starts the span of the operation r asks for, dms.<Operation>,
// a child of the caller's when r carries trace context.
func startSpan(r *http.Request) (context.Context, trace.Span) {
	name := operationName(r)
	ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	return otel.Tracer("github.com/sluicedb/sluice/functions/api").Start(ctx, "dms."+name,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(rpcSystem, rpcService, semconv.RPCMethod(name)))
}

// endSpan records the answer: the DMS fault as error.type, and an error
// status for a server fault only (a caller's mistake is not the server's
// error, as for gRPC and HTTP servers).
func endSpan(span trace.Span, w *statusWriter) {
	attrs := []attribute.KeyValue{semconv.HTTPResponseStatusCode(w.status)}
	if code := w.Header().Get("X-Amzn-ErrorType"); code != "" {
		attrs = append(attrs, semconv.ErrorTypeKey.String(code))
		if w.status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, code)
		}
	}
	span.SetAttributes(attrs...)
	span.End()
}

// operationName is the operation r asks for: X-Amz-Target's for a JSON 1.1
// request, the operation a REST alias stands for (see serveREST), or
// otherOperation. Only known names are returned, so that span names stay
// few whatever a caller sends.
func operationName(r *http.Request) string {
	if rest, ok := strings.CutPrefix(r.URL.Path, "/replications/"); ok {
		_, action, _ := strings.Cut(rest, "/")
		switch {
		case r.Method == http.MethodGet && action == "":
			return "DescribeReplications"
		case r.Method == http.MethodPost && action == "start":
			return "StartReplication"
		case r.Method == http.MethodPost && action == "stop":
			return "StopReplication"
		}
		return otherOperation
	}
	name, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	if _, known := operations[name]; !ok || !known {
		return otherOperation
	}
	return name
}

// statusWriter remembers the status of the answer, for the span.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (h *Handler) respond(w http.ResponseWriter, ctx context.Context, op operation, body []byte) {
	if len(strings.TrimSpace(string(body))) == 0 {
		body = []byte("{}")
	}
	out, err := op(h, ctx, body)
	if err != nil {
		h.writeError(w, err)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		h.writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_, _ = w.Write(b)
}

// writeError answers with the DMS fault err is, or maps the store's errors
// to faults. Anything else is a server fault, logged, and reported without
// its details.
func (h *Handler) writeError(w http.ResponseWriter, err error) {
	var f *fault
	switch {
	case errors.As(err, &f):
	case errors.Is(err, store.ErrNotFound):
		f = notFound("%v", err)
	case errors.Is(err, store.ErrExists):
		f = newFault("ResourceAlreadyExistsFault", http.StatusBadRequest, "%v", err)
	case errors.Is(err, store.ErrInUse):
		f = badState("%v", err)
	case errors.Is(err, store.ErrContention):
		f = newFault("ThrottlingException", http.StatusBadRequest, "%v", err)
	default:
		h.log().Error("request failed", "error", err)
		f = newFault("InternalFailure", http.StatusInternalServerError, "internal error; the server log has the details")
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", f.code)
	w.WriteHeader(f.status)
	b, _ := json.Marshal(map[string]string{"__type": f.code, "message": f.msg})
	_, _ = w.Write(b)
}

// decode reads a request into v, with errors that name the member.
func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			member := te.Field
			if member == "" {
				return newFault("SerializationException", http.StatusBadRequest, "the request body must be a JSON object, not %s", te.Value)
			}
			want := jsonKind(te.Type.Kind().String())
			if strings.HasPrefix(te.Value, "number") && want == "number" {
				// A number that does not fit: a fraction, or too large.
				want = "whole number in range"
			}
			return newFault("SerializationException", http.StatusBadRequest, "member %s must be a JSON %s, not %s", member, want, clip(te.Value))
		case errors.As(err, &se):
			return newFault("SerializationException", http.StatusBadRequest, "the request body is not valid JSON: %v (at byte %d)", se, se.Offset)
		default:
			return newFault("SerializationException", http.StatusBadRequest, "the request body does not have the shape of this operation: %v", err)
		}
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "int", "int64", "int32", "float64":
		return "number"
	case "bool":
		return "boolean"
	case "slice":
		return "array"
	default:
		return "object"
	}
}

// authenticate accepts a request signed with the Sluice key pair, or, in
// IAM mode, one API Gateway's IAM authorizer let through.
func (h *Handler) authenticate(r *http.Request, body []byte) error {
	if !h.TrustIAM {
		return h.Verifier.Verify(r, body)
	}
	if r.Header.Get(h.IAMCaller) == "" {
		return errors.New("this API takes requests that API Gateway's IAM authorizer verified (SigV4 for service execute-api with IAM credentials); this one came without a verified IAM caller")
	}
	return nil
}
