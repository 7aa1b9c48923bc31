package runtime

import (
	"strings"
	"testing"
	"time"
)

func TestParseSettings(t *testing.T) {
	cases := []struct {
		doc     string
		check   func(Settings) bool
		wantErr string
	}{
		// An empty document means the defaults.
		{"", func(s Settings) bool {
			return s.FullLoadSettings.TargetTablePrepMode == PrepDropAndCreate && s.FullLoadSettings.MaxFullLoadSubTasks == 8 &&
				s.ControlTablesSettings.ControlSchema == "public" && *s.SluiceSettings.CreateSecondaryIndexes
		}, ""},
		// A section or member Sluice does not honour is refused by name,
		// never accepted and ignored.
		{`{"Logging":{"EnableLogging":true},"FullLoadSettings":{"TargetTablePrepMode":"TRUNCATE_BEFORE_LOAD","CommitRate":10000}}`,
			nil, "ReplicationSettings FullLoadSettings.CommitRate, Logging: not honoured"},
		{`{"TargetMetadata":{"SupportLobs":true}}`, nil, "TargetMetadata.SupportLobs"},
		{`{"TargetMetadata":{"batchapplyenabled":true}}`, nil, "TargetMetadata.batchapplyenabled"},
		{`{"FullLoadSettings":{"TargetTablePrepMode":"TRUNCATE_BEFORE_LOAD"}}`,
			func(s Settings) bool { return s.FullLoadSettings.TargetTablePrepMode == PrepTruncateBeforeLoad }, ""},
		// Turning index creation off must survive the defaults.
		{`{"SluiceSettings":{"CreateSecondaryIndexes":false}}`, func(s Settings) bool { return !*s.SluiceSettings.CreateSecondaryIndexes }, ""},
		// Batch apply uses BatchApplyTimeoutMax as its window; transactional apply a short one.
		{`{"TargetMetadata":{"BatchApplyEnabled":true},"ChangeProcessingTuning":{"BatchApplyTimeoutMax":5}}`,
			func(s Settings) bool { return s.batchWindow() == 5*time.Second }, ""},
		{`{"ChangeProcessingTuning":{"BatchApplyTimeoutMax":5}}`, func(s Settings) bool { return s.batchWindow() == transactionalWindow }, ""},
		{`{"FullLoadSettings":{"TargetTablePrepMode":"DROP"}}`, nil, "TargetTablePrepMode"},
		{`{"FullLoadSettings":{"MaxFullLoadSubTasks":50}}`, nil, "1 to 49"},
		{`{"ChangeProcessingTuning":{"MemoryLimitTotal":-1}}`, nil, "negative"},
		// ValidationSettings: DMS's defaults filled in, members Sluice does
		// not honour refused by name.
		{`{"ValidationSettings":{"EnableValidation":true}}`, func(s Settings) bool {
			v := s.ValidationSettings
			return v.EnableValidation && v.ThreadCount == 5 && v.PartitionSize == 10000 && v.ValidationMode == ValidateGroupLevel &&
				v.FailureMaxCount == 10000 && v.TableFailureMaxCount == 1000 && v.RecordSuspendDelayInMinutes == 30
		}, ""},
		{`{"ValidationSettings":{"EnableValidation":true,"ValidationMode":"ROW_LEVEL","ThreadCount":2,"PartitionSize":500}}`, func(s Settings) bool {
			v := s.ValidationSettings
			return v.ValidationMode == ValidateRowLevel && v.ThreadCount == 2 && v.PartitionSize == 500
		}, ""},
		{`{"ValidationSettings":{"EnableValidation":true,"ValidationQueryCdcDelaySeconds":3,"RecordFailureDelayInMinutes":1}}`, func(s Settings) bool {
			v := s.ValidationSettings
			return v.CDCDelay() == 3*time.Second && v.FailureDelay() == time.Minute
		}, ""},
		{`{"ValidationSettings":{"EnableValidation":true,"ValidationPartialLobSize":0}}`, nil, "ValidationSettings.ValidationPartialLobSize: not honoured"},
		{`{"ValidationSettings":{"EnableValidation":true,"ValidationMode":"FAST"}}`, nil, "GROUP_LEVEL or ROW_LEVEL"},
		{`{"ValidationSettings":{"ThreadCount":-1}}`, nil, "ThreadCount -1 is out of range"},
		{`{"ValidationSettings":{"PartitionSize":1}}`, nil, "at least 2"},
		// ErrorBehavior: DMS's members and values, DMS's defaults where
		// a document is silent, the rest refused by name.
		{`{"ErrorBehavior":{}}`, func(s Settings) bool {
			e := s.ErrorBehavior
			i, u, d := e.conflicts()
			n, first, throttle, longest := e.retries()
			return e.policy("DataErrorPolicy") == PolicyLogError && e.policy("TableErrorPolicy") == PolicySuspendTable &&
				e.policy("DataErrorEscalationPolicy") == PolicySuspendTable && e.policy("ApplyErrorDeletePolicy") == PolicyIgnoreRecord &&
				i == ConflictReport && u == ConflictReport && d == ConflictSkip && e.failOnNoTables() &&
				n == -1 && first == firstRetry && throttle && longest == maxRetryWait
		}, ""},
		{`{"ErrorBehavior":{"ApplyErrorInsertPolicy":"INSERT_RECORD","ApplyErrorDeletePolicy":"LOG_ERROR","RecoverableErrorCount":3,"RecoverableErrorInterval":2,"RecoverableErrorThrottling":false}}`, func(s Settings) bool {
			i, _, d := s.ErrorBehavior.conflicts()
			n, first, throttle, _ := s.ErrorBehavior.retries()
			return i == ConflictOverwrite && d == ConflictReport && n == 3 && first == 2*time.Second && !throttle
		}, ""},
		// An IGNORE_RECORD that counts towards an escalation is reported.
		{`{"ErrorBehavior":{"ApplyErrorEscalationCount":5}}`, func(s Settings) bool {
			_, _, d := s.ErrorBehavior.conflicts()
			return d == ConflictReport
		}, ""},
		{`{"ErrorBehavior":{"DataErrorPolicy":"SKIP"}}`, nil, "ErrorBehavior.DataErrorPolicy \"SKIP\" is not valid"},
		{`{"ErrorBehavior":{"ApplyErrorUpdatePolicy":"INSERT_RECORD"}}`, nil, "ApplyErrorUpdatePolicy"},
		{`{"ErrorBehavior":{"TableErrorEscalationPolicy":"SUSPEND_TABLE"}}`, nil, "use STOP_TASK"},
		{`{"ErrorBehavior":{"DataErrorEscalationCount":-1}}`, nil, "out of range"},
		{`{"ErrorBehavior":{"RecoverableErrorCount":-2}}`, nil, "RecoverableErrorCount -2"},
		{`{"ErrorBehavior":{"EventErrorPolicy":"IGNORE","ApplyErrorFailOnTruncationDdl":false}}`, nil, "ErrorBehavior.ApplyErrorFailOnTruncationDdl, ErrorBehavior.EventErrorPolicy: not honoured"},
		// Batch apply writes net changes: conflict policies it cannot
		// honour are refused when a document asks for them.
		{`{"TargetMetadata":{"BatchApplyEnabled":true}}`, func(Settings) bool { return true }, ""},
		{`{"TargetMetadata":{"BatchApplyEnabled":true},"ErrorBehavior":{"ApplyErrorInsertPolicy":"INSERT_RECORD","DataErrorPolicy":"STOP_TASK"}}`, func(Settings) bool { return true }, ""},
		{`{"TargetMetadata":{"BatchApplyEnabled":true},"ErrorBehavior":{"ApplyErrorUpdatePolicy":"LOG_ERROR"}}`, nil, "ErrorBehavior.ApplyErrorUpdatePolicy LOG_ERROR cannot be honoured with TargetMetadata.BatchApplyEnabled"},
		{`{"FullLoadSettings":`, nil, "not valid JSON"},
		{`{"FullLoadSettings":{"MaxFullLoadSubTasks":"eight"}}`, nil, "not valid JSON"},
	}
	for _, c := range cases {
		s, err := ParseSettings([]byte(c.doc))
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseSettings(%s) error = %v, want one containing %q", c.doc, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSettings(%s): %v", c.doc, err)
			continue
		}
		if !c.check(s) {
			t.Errorf("ParseSettings(%s) = %+v", c.doc, s)
		}
	}
}

func TestCheckTypeNoTables(t *testing.T) {
	s, err := ParseSettings([]byte(`{"ErrorBehavior":{"FailOnNoTablesCaptured":false}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckType(FullLoad); err != nil {
		t.Errorf("full-load with FailOnNoTablesCaptured false: %v", err)
	}
	for _, typ := range []string{CDC, FullLoadAndCDC} {
		if err := s.CheckType(typ); err == nil || !strings.Contains(err.Error(), "ErrorBehavior.FailOnNoTablesCaptured") {
			t.Errorf("%s with FailOnNoTablesCaptured false: %v, want a refusal naming it", typ, err)
		}
	}
}
