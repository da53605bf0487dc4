package queue

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// Several hosts starting at once must not create the same clustered stream
// at the same moment: measured on a 3-server cluster with replicas 3, two
// of three concurrent creates of one bucket got no answer, and nor did
// their retries. So each stream, bucket and consumer is looked up first and
// created only when missing, and a create that loses the race looks it up
// again; one that exists with other settings is updated.

// lookUpOrCreate returns what lookUp finds or, when it finds nothing
// (notFound), what create makes; a create that finds it made meanwhile
// (exists) looks it up again.
func lookUpOrCreate[T any](lookUp, create func() (T, error), notFound, exists error) (T, error) {
	v, err := lookUp()
	if errors.Is(err, notFound) {
		v, err = create()
		if errors.Is(err, exists) {
			v, err = lookUp()
		}
	}
	return v, err
}

// ensureStream returns the stream cfg names, made or updated to cfg.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := lookUpOrCreate(
		func() (jetstream.Stream, error) { return js.Stream(ctx, cfg.Name) },
		func() (jetstream.Stream, error) { return js.CreateStream(ctx, cfg) },
		jetstream.ErrStreamNotFound, jetstream.ErrStreamNameAlreadyInUse)
	if err != nil {
		return nil, err
	}
	if got := s.CachedInfo().Config; got.Duplicates != cfg.Duplicates || got.Replicas != cfg.Replicas ||
		got.AllowMsgSchedules != cfg.AllowMsgSchedules {
		return js.UpdateStream(ctx, cfg)
	}
	return s, nil
}

// ensureKV returns the bucket cfg names, made or updated to cfg.
func ensureKV(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := lookUpOrCreate(
		func() (jetstream.KeyValue, error) { return js.KeyValue(ctx, cfg.Bucket) },
		func() (jetstream.KeyValue, error) { return js.CreateKeyValue(ctx, cfg) },
		jetstream.ErrBucketNotFound, jetstream.ErrBucketExists)
	if err != nil {
		return nil, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.TTL() != cfg.TTL || st.Config().Replicas != cfg.Replicas || st.LimitMarkerTTL() != cfg.LimitMarkerTTL {
		return js.UpdateKeyValue(ctx, cfg)
	}
	return kv, nil
}

// ensureConsumer returns the durable consumer cfg names on stream, made or
// updated to cfg.
func ensureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := lookUpOrCreate(
		func() (jetstream.Consumer, error) { return js.Consumer(ctx, stream, cfg.Durable) },
		func() (jetstream.Consumer, error) { return js.CreateConsumer(ctx, stream, cfg) },
		jetstream.ErrConsumerNotFound, jetstream.ErrConsumerExists)
	if err != nil {
		return nil, err
	}
	if got := c.CachedInfo().Config; got.AckWait != cfg.AckWait || got.FilterSubject != cfg.FilterSubject {
		return js.UpdateConsumer(ctx, stream, cfg)
	}
	return c, nil
}
