package consumers

// CrashBeforeAckForTest makes the intake stop after saving a batch and before
// acknowledging it, returning err from Run, as a process killed at that point would.
func (in *Intake) CrashBeforeAckForTest(err error) {
	in.beforeAck = func() error { return err }
}
