package consumers_test

import "github.com/payinfra/refunds/state"

var defaultRules = state.DefaultRules()
