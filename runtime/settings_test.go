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
		// DMS documents carry many sections Sluice ignores; they must not fail.
		{`{"Logging":{"EnableLogging":true},"FullLoadSettings":{"TargetTablePrepMode":"TRUNCATE_BEFORE_LOAD","CommitRate":10000}}`,
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
		// DMS's default ValidationSettings (validation off) mean what Sluice
		// does; asking for validation is refused, never ignored.
		{`{"ValidationSettings":{"EnableValidation":false,"ThreadCount":5,"ValidationMode":"ROW_LEVEL"}}`, func(s Settings) bool { return !s.ValidationSettings.EnableValidation }, ""},
		{`{"ValidationSettings":{"EnableValidation":true}}`, nil, "does not validate data yet"},
		{`{"ValidationSettings":{"ValidationOnly":true}}`, nil, "ValidationOnly"},
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
