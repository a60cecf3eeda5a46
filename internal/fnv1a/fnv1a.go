// Package fnv1a is FNV-1a (32 bits) of a string, as hash/fnv computes it, without
// hash/fnv's allocation: the intake hashes every event's account to pick its worker,
// and the store every key of every step to pick its partition.
package fnv1a

// Sum32 is the FNV-1a hash of s.
func Sum32(s string) uint32 {
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= prime32
	}
	return h
}
