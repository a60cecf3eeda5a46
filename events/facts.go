package events

// A fact is something upstream announces once under its own business id: a
// consumption, a voucher, a transfer, a bill. Announced again under another event id
// (a replay, a retry by a publisher that made up a new id) it is still the same fact,
// and must not count twice. Events that refer to a fact without being one (a bill
// payment, a recall, a resolution: several may share the id) have no fact id.

// FactID is the business id of the fact an event announces, unique per account and
// type, or "" when the event does not announce one.
func (e Event) FactID() string {
	var id string
	switch p := e.Payload.(type) {
	case *ConsumptionRecordedData:
		id = p.ConsumptionID
	case *VoucherGrantedData:
		id = p.VoucherID
	case *UsageAccruedData:
		id = p.UsageID
	case *TransferReceivedData:
		id = p.TransferID
	case *BillIssuedData:
		id = p.BillID
	case *CreditNoteIssuedData:
		id = p.CreditNoteID
	case *ResourceCreatedData:
		id = p.ResourceID
	case *ResourceReleasedData:
		id = p.ResourceID
	default:
		return ""
	}
	return string(e.Type) + ":" + id
}
