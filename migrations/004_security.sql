-- Security: secret rotation and token scopes.

-- A rotated secret keeps signing, next to the new one, until it expires, so receivers
-- can switch secrets without dropping a delivery.
alter table webhooks
  add column previous_secret_key text,
  add column previous_secret_expires_at timestamptz;

-- What a token may do: read (GET only), write (its user's own resources), admin
-- (everything, for an admin user). Tokens made before scopes keep what they could do.
alter table api_tokens
  add column scope text not null default 'write' check (scope in ('read', 'write', 'admin'));
update api_tokens t set scope = 'admin' from users u where u.id = t.user_id and u.is_admin;
