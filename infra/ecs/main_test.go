package ecs

import (
	"testing"

	"github.com/sluicedb/sluice/infra/mototest"
)

func TestMain(m *testing.M) {
	defer mototest.Stop()
	m.Run()
}
