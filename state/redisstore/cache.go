package redisstore

import (
	"sync"

	"github.com/payinfra/refunds/state"
)

// accountCache keeps the accounts this process last read or wrote, by version. A
// version names one document (see Step.NextVersion), so an entry can never be stale:
// when Redis holds the same version, it holds this account, and decoding it again is
// wasted work (a quarter of the intake's CPU). When another instance wrote since, the
// version differs and the account is decoded from Redis as usual.
//
// The accounts are shared, not copied: state.Apply never changes the account it is
// given (it works on a clone), and nothing else changes one.
type accountCache struct {
	mu  sync.Mutex
	max int
	// accounts are by pointer: an entry is never changed, only replaced, so a reader
	// may keep one after the lock, and a step's base is not a copy of an account.
	accounts map[string]*cached
}

// cached is an account at a version, and whether its stored hash is in the layout of
// one field per fact (see fields.go), so a step may write only what changed.
type cached struct {
	state.Versioned
	fieldByField bool
	// core is the account's "c" field as Redis holds it, when fieldByField.
	core string
}

func newAccountCache(max int) *accountCache {
	return &accountCache{max: max, accounts: make(map[string]*cached, max)}
}

// lookup is the account cached under id, at whatever version, or nil. An entry is
// never changed, so it may be kept after the lock.
func (c *accountCache) lookup(id string) *cached {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.accounts[id]
}

// storedFieldByField is the account Redis holds at version, when that is the one
// cached and Redis holds it field by field; else nil.
func (c *accountCache) storedFieldByField(id, version string) *onRedis {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.accounts[id]
	if !ok || v.Version != version || !v.fieldByField {
		return nil
	}
	return &onRedis{account: &v.Account, core: v.core}
}

// put caches a at version; fieldByField says Redis holds it field by field, with core
// as its "c" field.
func (c *accountCache) put(id, version string, a state.Account, fieldByField bool, core string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.accounts[id]; !ok && len(c.accounts) >= c.max {
		// Full: drop an arbitrary entry (map order). A miss only costs a decode.
		for k := range c.accounts {
			delete(c.accounts, k)
			break
		}
	}
	c.accounts[id] = &cached{Versioned: state.Versioned{Account: a, Version: version}, fieldByField: fieldByField, core: core}
}
