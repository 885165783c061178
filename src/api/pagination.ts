import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError } from '../core/errors.js';

/** DRF page-number pagination: `{count, next, previous, results}` with absolute links. */
export const DEFAULT_PAGE_SIZE = 20;

export const PageQuery = {
  page: Type.Optional(Type.Integer({ minimum: 1 })),
  page_size: Type.Optional(Type.Integer({ minimum: 1 })),
};

export const pageOf = <T extends ReturnType<typeof Type.Object>>(item: T) =>
  Type.Object({
    count: Type.Integer(),
    next: Type.Union([Type.String(), Type.Null()]),
    previous: Type.Union([Type.String(), Type.Null()]),
    results: Type.Array(item),
  });

export interface PageRequest {
  page: number;
  pageSize: number;
  limit: number;
  offset: number;
}

export function pageRequest(
  query: { page?: number; page_size?: number },
  maxPageSize: number,
): PageRequest {
  const page = query.page ?? 1;
  const pageSize = Math.min(query.page_size ?? DEFAULT_PAGE_SIZE, maxPageSize);
  const offset = (page - 1) * pageSize;
  // No table holds 2**53 rows: such a page is past the end (and would overflow bigint).
  if (!Number.isSafeInteger(offset)) throw AppError.notFound('Invalid page.');
  return { page, pageSize, limit: pageSize, offset };
}

export interface Page<T> {
  count: number;
  next: string | null;
  previous: string | null;
  results: T[];
}

/**
 * Builds the page body. A page past the last one is DRF's 404 "Invalid page."; the
 * first page's link drops `page` altogether, as DRF does.
 */
export function pageBody<T>(
  request: FastifyRequest,
  p: PageRequest,
  count: number,
  results: T[],
  publicUrl: string | undefined,
): Page<T> {
  const lastPage = Math.max(1, Math.ceil(count / p.pageSize));
  if (p.page > lastPage) throw AppError.notFound('Invalid page.');
  const base = publicUrl ? publicUrl.replace(/\/$/, '') : `${request.protocol}://${request.host}`;
  // As DRF's replace_query_param: the host exactly as the request named it (a URL object
  // would drop a default port) and the parameters sorted by name.
  const link = (page: number): string => {
    const url = new URL(request.url, base + '/');
    const entries = [...url.searchParams].filter(([key]) => key !== 'page');
    if (page > 1) entries.push(['page', String(page)]);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const query = new URLSearchParams(entries).toString();
    return `${base}${url.pathname}${query ? `?${query}` : ''}`;
  };
  return {
    count,
    next: p.page < lastPage ? link(p.page + 1) : null,
    previous: p.page > 1 ? link(p.page - 1) : null,
    results,
  };
}
