package api

import (
	"context"
	"fmt"

	"github.com/sluicedb/sluice/infra/store"
)

// resource checks that arn names an endpoint or config that exists.
func (h *Handler) resource(ctx context.Context, member, arn string) error {
	kind, err := h.checkARN(member, arn, "")
	if err != nil {
		return err
	}
	if kind == kindEndpoint {
		_, err = h.Store.Endpoint(ctx, arn)
	} else {
		_, err = h.Store.Config(ctx, arn)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", member, err)
	}
	return nil
}

func checkTags(tags []store.Tag) error {
	for _, t := range tags {
		if t.Key == "" || len(t.Key) > 128 {
			return invalid("a tag Key must have 1 to 128 characters")
		}
		if len(t.Value) > 256 {
			return invalid("the value of tag %s has %d characters: at most 256 are allowed", clip(t.Key), len(t.Value))
		}
	}
	return nil
}

func (h *Handler) addTags(ctx context.Context, body []byte) (any, error) {
	var in struct {
		ResourceArn string
		Tags        []store.Tag
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := h.resource(ctx, "ResourceArn", in.ResourceArn); err != nil {
		return nil, err
	}
	if err := checkTags(in.Tags); err != nil {
		return nil, err
	}
	return struct{}{}, h.Store.AddTags(ctx, in.ResourceArn, in.Tags)
}

func (h *Handler) removeTags(ctx context.Context, body []byte) (any, error) {
	var in struct {
		ResourceArn string
		TagKeys     []string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := h.resource(ctx, "ResourceArn", in.ResourceArn); err != nil {
		return nil, err
	}
	return struct{}{}, h.Store.RemoveTags(ctx, in.ResourceArn, in.TagKeys)
}

func (h *Handler) listTags(ctx context.Context, body []byte) (any, error) {
	var in struct {
		ResourceArn     string
		ResourceArnList []string
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	arns := in.ResourceArnList
	if in.ResourceArn != "" {
		arns = append([]string{in.ResourceArn}, arns...)
	}
	if len(arns) == 0 {
		return nil, invalid("ResourceArn or ResourceArnList is required")
	}
	out := []store.Tag{}
	for _, arn := range arns {
		if err := h.resource(ctx, "ResourceArn", arn); err != nil {
			return nil, err
		}
		tags, err := h.Store.Tags(ctx, arn)
		if err != nil {
			return nil, err
		}
		out = append(out, tags...)
	}
	return map[string]any{"TagList": out}, nil
}
