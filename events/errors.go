package events

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched, with errors.Is, by every error that refuses an event:
// the event is malformed or impossible and retrying it cannot help, so a
// consumer parks it as a dead letter instead of redelivering it.
var ErrInvalid = errors.New("invalid event")

var (
	// ErrUnknownType refuses an event whose type is not in the catalog.
	ErrUnknownType = fmt.Errorf("%w: unknown type", ErrInvalid)
	// ErrTooLarge refuses an event over MaxEventSize bytes.
	ErrTooLarge = fmt.Errorf("%w: over %d bytes", ErrInvalid, MaxEventSize)
)

// InvalidError says which field of an event is wrong and why. Field is a dotted
// path in the structured CloudEvent ("subject", "data.amount",
// "data.destination.kind"); it is empty when the event as a whole is refused.
type InvalidError struct {
	Field  string
	Reason string
	// Err is the more specific sentinel (ErrUnknownType, ErrTooLarge) when
	// there is one; nil means plain ErrInvalid.
	Err error
}

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return ErrInvalid.Error() + ": " + e.Reason
	}
	return ErrInvalid.Error() + ": " + e.Field + ": " + e.Reason
}

// Unwrap makes errors.Is(err, ErrInvalid) true, and errors.Is(err, Err) too
// when Err is set (both sentinels wrap ErrInvalid).
func (e *InvalidError) Unwrap() error {
	if e.Err != nil {
		return e.Err
	}
	return ErrInvalid
}

func invalid(field, format string, args ...any) *InvalidError {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
