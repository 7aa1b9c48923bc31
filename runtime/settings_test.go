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
