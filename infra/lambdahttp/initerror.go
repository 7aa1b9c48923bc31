package lambdahttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
)

// initErrorType is the errorType Lambda shows beside the message. It is
// ours, not one of the Runtime.* types Lambda itself reports.
const initErrorType = "Function.InitError"

// ReportInitError tells the Lambda Runtime API that the function could not
// start, so that Lambda shows err's message in the failed invocation and
// its logs instead of a bare "Runtime exited". The caller should exit
// afterwards; Lambda starts a fresh process for the next event. Outside
// Lambda (AWS_LAMBDA_RUNTIME_API unset) there is no one to tell, and it
// returns nil.
//
// aws-lambda-go has no call for this: it only reports errors of
// invocations, and a function that fails before lambda.Start has none.
func ReportInitError(ctx context.Context, err error) error {
	api := os.Getenv("AWS_LAMBDA_RUNTIME_API")
	if api == "" {
		return nil
	}
	body, _ := json.Marshal(map[string]any{"errorMessage": err.Error(), "errorType": initErrorType, "stackTrace": []string{}})
	url := "http://" + api + "/2018-06-01/runtime/init/error"
	req, rerr := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if rerr != nil {
		return fmt.Errorf("report the init error to %s: %w", url, rerr)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Lambda-Runtime-Function-Error-Type", initErrorType)
	// A zero Transport uses no proxy: the Runtime API is local to the
	// sandbox, and a proxy from the environment must not capture it.
	resp, rerr := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if rerr != nil {
		return fmt.Errorf("report the init error to %s: %w", url, rerr)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("report the init error to %s: status %s, want 202 Accepted", url, resp.Status)
	}
	return nil
}
