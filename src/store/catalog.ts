import type { Queryable } from './db.js';

/** The event-type catalog and the content-type (model) registry. */
export interface EventType {
  id: number;
  name: string;
  description: string;
  created_date: string;
  modified_date: string;
}

export interface ContentType {
  id: number;
  model: string;
  source_url: string | null;
  source_headers: Record<string, string>;
  created_date: string;
  modified_date: string;
}

const ET = `id, name, description, oms_ts(created_date) as created_date, oms_ts(modified_date) as modified_date`;
const CT = `id, model, source_url, source_headers, oms_ts(created_date) as created_date, oms_ts(modified_date) as modified_date`;

export async function listEventTypes(db: Queryable): Promise<EventType[]> {
  return (await db.query<EventType>(`select ${ET} from event_types order by name`)).rows;
}

export async function getEventType(db: Queryable, id: number): Promise<EventType | undefined> {
  return (await db.query<EventType>(`select ${ET} from event_types where id = $1`, [id])).rows[0];
}

export async function eventTypeNames(db: Queryable): Promise<string[]> {
  return (await db.query<{ name: string }>(`select name from event_types`)).rows.map((r) => r.name);
}

export async function insertEventType(
  db: Queryable,
  name: string,
  description: string,
): Promise<EventType | undefined> {
  const { rows } = await db.query<EventType>(
    `insert into event_types (name, description) values ($1, $2) on conflict (name) do nothing returning ${ET}`,
    [name, description],
  );
  return rows[0];
}

export async function updateEventType(
  db: Queryable,
  id: number,
  description: string,
): Promise<EventType | undefined> {
  const { rows } = await db.query<EventType>(
    `update event_types set description = $2, modified_date = now() where id = $1 returning ${ET}`,
    [id, description],
  );
  return rows[0];
}

export async function deleteEventType(db: Queryable, id: number): Promise<boolean> {
  return (await db.query(`delete from event_types where id = $1`, [id])).rowCount > 0;
}

export async function listContentTypes(db: Queryable): Promise<ContentType[]> {
  return (await db.query<ContentType>(`select ${CT} from content_types order by id`)).rows;
}

export async function getContentType(db: Queryable, id: number): Promise<ContentType | undefined> {
  return (await db.query<ContentType>(`select ${CT} from content_types where id = $1`, [id]))
    .rows[0];
}

export async function findContentType(
  db: Queryable,
  model: string,
): Promise<ContentType | undefined> {
  return (await db.query<ContentType>(`select ${CT} from content_types where model = $1`, [model]))
    .rows[0];
}

export interface ContentTypeInput {
  model: string;
  source_url: string | null;
  source_headers: Record<string, string>;
}

export async function insertContentType(
  db: Queryable,
  input: ContentTypeInput,
): Promise<ContentType | undefined> {
  const { rows } = await db.query<ContentType>(
    `insert into content_types (model, source_url, source_headers) values ($1, $2, $3::jsonb)
     on conflict (model) do nothing returning ${CT}`,
    [input.model, input.source_url, JSON.stringify(input.source_headers)],
  );
  return rows[0];
}

/** PostgreSQL's unique_violation, as both adapters report it. */
const isUniqueViolation = (error: unknown): boolean =>
  typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '23505';

/**
 * Replaces a content type. Undefined when there is no such id; `'duplicate'` when
 * another content type already has the model name.
 */
export async function updateContentType(
  db: Queryable,
  id: number,
  input: ContentTypeInput,
): Promise<ContentType | undefined | 'duplicate'> {
  try {
    const { rows } = await db.query<ContentType>(
      `update content_types set model = $2, source_url = $3, source_headers = $4::jsonb, modified_date = now()
       where id = $1 returning ${CT}`,
      [id, input.model, input.source_url, JSON.stringify(input.source_headers)],
    );
    return rows[0];
  } catch (error) {
    if (isUniqueViolation(error)) return 'duplicate';
    throw error;
  }
}

export async function deleteContentType(db: Queryable, id: number): Promise<boolean> {
  const { rows } = await db.query<{ used: boolean }>(
    `select exists (select 1 from hook_events where content_type_id = $1) as used`,
    [id],
  );
  if (rows[0]?.used) return false;
  return (await db.query(`delete from content_types where id = $1`, [id])).rowCount > 0;
}
