package lambdahttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluicedb/sluice/infra/lambdahttp"
)

func TestReportInitError(t *testing.T) {
	var got struct {
		path, errorType string
		body            struct{ ErrorMessage, ErrorType string }
	}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.path, got.errorType = r.Method+" "+r.URL.Path, r.Header.Get("Lambda-Runtime-Function-Error-Type")
		if err := json.NewDecoder(r.Body).Decode(&got.body); err != nil {
			t.Errorf("the report is not JSON: %v", err)
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer api.Close()
	t.Setenv("AWS_LAMBDA_RUNTIME_API", strings.TrimPrefix(api.URL, "http://"))

	if err := lambdahttp.ReportInitError(context.Background(), errors.New("SLUICE_ACCESS_KEY_ID must be set")); err != nil {
		t.Fatal(err)
	}
	if got.path != "POST /2018-06-01/runtime/init/error" {
		t.Errorf("reported to %s", got.path)
	}
	if got.body.ErrorMessage != "SLUICE_ACCESS_KEY_ID must be set" || got.body.ErrorType == "" || got.errorType != got.body.ErrorType {
		t.Errorf("report %+v, error type header %q", got.body, got.errorType)
	}
}

// TestReportInitErrorRefused: a Runtime API that does not accept the report
// is an error the caller can log, not a silent success.
func TestReportInitErrorRefused(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	defer api.Close()
	t.Setenv("AWS_LAMBDA_RUNTIME_API", strings.TrimPrefix(api.URL, "http://"))
	if err := lambdahttp.ReportInitError(context.Background(), errors.New("x")); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("err = %v, want one naming the 403", err)
	}
}

// TestReportInitErrorOutsideLambda: with no Runtime API there is no one to
// tell, and nothing fails.
func TestReportInitErrorOutsideLambda(t *testing.T) {
	t.Setenv("AWS_LAMBDA_RUNTIME_API", "")
	if err := lambdahttp.ReportInitError(context.Background(), errors.New("x")); err != nil {
		t.Fatal(err)
	}
}
