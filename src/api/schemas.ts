import { Type } from 'typebox';
import { INT4_MAX } from '../store/db.js';

/** Response and shared schemas; the OpenAPI document is generated from these. */
const Timestamp = Type.String({ description: 'UTC, microseconds: 2024-02-19T08:12:18.591206Z' });
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const JsonObject = Type.Record(Type.String(), Type.Unknown());

export const Detail = Type.Object({ detail: Type.String() });
export const FieldErrors = Type.Record(Type.String(), Type.Unknown(), {
  description: 'DRF validation errors: {"field": ["message"]}',
});
/**
 * A path's id: past the column's range it names no row, and answers 404 as an id that
 * does not exist does (before, PostgreSQL refused the query and the API answered 500).
 */
export const IdParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: INT4_MAX }) });
/** A hook event's id, a bigint: any integer JavaScript holds exactly. */
export const EventIdParams = Type.Object({
  id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
});
export const Empty = Type.Unknown({ description: 'Empty body' });

export const Webhook = Type.Object({
  id: Type.Integer(),
  retry_countdown_config: Type.Object({ choice: Type.String(), kwargs: JsonObject }),
  created_date: Timestamp,
  modified_date: Timestamp,
  target_url: Type.String(),
  is_active: Type.Boolean(),
  secret_key: Type.String(),
  event_type: Type.String(),
  callback: Nullable(Type.String()),
  additional_headers: Type.Record(Type.String(), Type.String()),
  config: JsonObject,
});

export const HookEvent = Type.Object({
  id: Type.Integer(),
  webhook: Webhook,
  created_date: Timestamp,
  modified_date: Timestamp,
  uuid: Type.String({ format: 'uuid' }),
  request_payload: Type.Unknown(),
  response_content: Nullable(Type.String()),
  response_http_status: Type.Union([Type.Integer(), Type.Null()]),
  delivered: Type.Boolean(),
  request_datetimes: Type.Array(Timestamp),
  retry_count: Type.Union([Type.Integer(), Type.Null()]),
  object_id: Type.Unknown(),
  content_type: Type.Union([Type.Integer(), Type.Null()]),
});

export const EventType = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  description: Type.String(),
  created_date: Timestamp,
  modified_date: Timestamp,
});

export const ContentType = Type.Object({
  id: Type.Integer(),
  model: Type.String(),
  source_url: Nullable(Type.String()),
  source_headers: Type.Record(Type.String(), Type.String()),
  created_date: Timestamp,
  modified_date: Timestamp,
});

export const Token = Type.Object({
  id: Type.Integer(),
  user: Type.String(),
  is_admin: Type.Boolean(),
  name: Type.String(),
  key_prefix: Type.String(),
  created_date: Timestamp,
  last_used: Nullable(Type.String()),
  revoked: Type.Boolean(),
  scope: Type.Union([Type.Literal('read'), Type.Literal('write'), Type.Literal('admin')]),
});

export const errorResponses = {
  400: FieldErrors,
  401: Detail,
  403: Detail,
  404: Detail,
};
