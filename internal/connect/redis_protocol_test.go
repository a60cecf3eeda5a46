package connect_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/payinfra/refunds/internal/connect"
)

func TestTheRedisClientsSpeakRESP2UnlessTheURLAsksForAnother(t *testing.T) {
	for _, c := range []struct {
		url     string
		cluster bool
		want    int
	}{
		{"redis://127.0.0.1:6379/0", false, 2},
		{"redis://127.0.0.1:6379/0?protocol=3", false, 3},
		{"redis://127.0.0.1:7000?addr=127.0.0.1:7001", true, 2},
		{"redis://127.0.0.1:7000?addr=127.0.0.1:7001&protocol=3", true, 3},
	} {
		client, err := connect.NewRedisClient(c.url, c.cluster, connect.RedisTLS{})
		if err != nil {
			t.Fatalf("%s: %v", c.url, err)
		}
		var got int
		switch rc := client.(type) {
		case *redis.Client:
			got = rc.Options().Protocol
		case *redis.ClusterClient:
			got = rc.Options().Protocol
		}
		_ = client.Close()
		if got != c.want {
			t.Errorf("%s: protocol %d, want %d", c.url, got, c.want)
		}
	}
}
