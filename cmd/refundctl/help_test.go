package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestHelpListsEveryCommandAndEachHasItsOwn(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		var out bytes.Buffer
		if err := run(args, &out); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if !strings.HasPrefix(out.String(), "usage: refundctl [<flags>] <command>") {
			t.Errorf("%v printed:\n%s", args, out.String())
		}
	}
	var usageOut bytes.Buffer
	_ = run([]string{"help"}, &usageOut)
	for cmd := range commandHelp {
		if !strings.Contains(usageOut.String(), "\n  "+cmd+" ") {
			t.Errorf("the usage does not list %s", cmd)
		}
		var out bytes.Buffer
		if err := run([]string{"help", cmd}, &out); err != nil || !strings.HasPrefix(out.String(), "usage: refundctl "+cmd) {
			t.Errorf("help %s: %v\n%s", cmd, err, out.String())
		}
	}
	if err := run([]string{"help", "nonsense"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), `no command "nonsense"`) {
		t.Errorf("help for an unknown command: %v", err)
	}
}
