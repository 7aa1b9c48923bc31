package test

import (
	"archive/zip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicedb/sluice/infra/mototest"
)

// TestLocalStackHook runs localstack/init/ready.d/10-sluice.sh as
// LocalStack would, with `awslocal` pointed at moto_server (there is no
// LocalStack here), twice: the first run creates the secrets, roles, ECS
// cluster and task definition, the three functions, the HTTP API and the
// sweep schedule; the second finds them and changes nothing it should
// keep. The functions' zips are stand-ins: moto does not run them.
func TestLocalStackHook(t *testing.T) {
	motoURL := mototest.Start(t)
	dir := t.TempDir()
	lambdas := filepath.Join(dir, "lambda")
	if err := os.MkdirAll(lambdas, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, fn := range []string{"api", "analyze", "schedule"} {
		f, err := os.Create(filepath.Join(lambdas, fn+".zip"))
		if err != nil {
			t.Fatal(err)
		}
		z := zip.NewWriter(f)
		w, _ := z.Create("bootstrap")
		_, _ = w.Write([]byte("#!/bin/sh\n"))
		if err := z.Close(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	shim := "#!/bin/sh\nexec aws --endpoint-url \"$MOTO_URL\" \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "awslocal"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	hook, err := filepath.Abs("../localstack/init/ready.d/10-sluice.sh")
	if err != nil {
		t.Fatal(err)
	}
	// The AWS CLI takes an empty AWS_PROFILE or AWS_SESSION_TOKEN (how
	// mototest clears them) as values.
	var env []string
	for _, kv := range os.Environ() {
		if kv != "AWS_PROFILE=" && kv != "AWS_SESSION_TOKEN=" {
			env = append(env, kv)
		}
	}
	env = append(env, "AWS_DEFAULT_REGION=us-east-1")
	run := func() string {
		t.Helper()
		cmd := exec.Command("bash", hook)
		cmd.Env = append(env, "MOTO_URL="+motoURL, "PATH="+bin+":"+os.Getenv("PATH"),
			"SLUICE_LAMBDA_DIR="+lambdas,
			"SLUICE_ACCESS_KEY_ID=AKIDSLUICELOCAL00001", "SLUICE_SECRET_ACCESS_KEY=sluice-local-secret")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the hook failed: %v\n%s", err, out)
		}
		return string(out)
	}
	first := run()
	if !strings.Contains(first, "sluice: API ready: http://") {
		t.Fatalf("the hook did not print the API's URL:\n%s", first)
	}
	aws := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("aws", append([]string{"--endpoint-url", motoURL}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	fns := aws("lambda", "list-functions", "--query", "Functions[].FunctionName", "--output", "text")
	for _, fn := range []string{"sluice-api", "sluice-analyze", "sluice-schedule"} {
		if !strings.Contains(fns, fn) {
			t.Errorf("function %s missing: %s", fn, fns)
		}
	}
	key := aws("secretsmanager", "get-secret-value", "--secret-id", "sluice/master-key", "--query", "SecretString", "--output", "text")
	if in := aws("scheduler", "get-schedule", "--name", "sluice-sweep", "--query", "Target.Input", "--output", "text"); !strings.Contains(in, `"sweep"`) {
		t.Errorf("the sweep schedule's input is %s", in)
	}
	if td := aws("ecs", "list-task-definitions", "--family-prefix", "sluice-replicator", "--query", "taskDefinitionArns", "--output", "text"); td == "" || td == "None" {
		t.Error("no replicator task definition")
	}
	second := run()
	if !strings.Contains(second, "sluice: API ready: http://") {
		t.Fatalf("the second run did not print the API's URL:\n%s", second)
	}
	if again := aws("secretsmanager", "get-secret-value", "--secret-id", "sluice/master-key", "--query", "SecretString", "--output", "text"); again != key {
		t.Fatal("the second run replaced the master key: the sealed passwords in Redis would be lost")
	}
	if apis := aws("apigatewayv2", "get-apis", "--query", "length(Items)"); apis != "1" {
		t.Fatalf("%s HTTP APIs after two runs, want 1", apis)
	}
}
