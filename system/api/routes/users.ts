import { Hono } from 'hono';
import { z } from 'zod';
import { sharesOrg } from '../../db/queries/users.ts';
import type { AppEnv } from '../context.ts';
import { userDto } from '../dto.ts';
import { AppError } from '../errors.ts';
import { json } from '../respond.ts';
import { entityId, validate } from '../validation.ts';

/** `GET /api/users/:userId`: visible only to the user and to people sharing an org. */
export function userRoutes() {
  return new Hono<AppEnv>().get(
    '/:userId',
    validate('param', z.object({ userId: entityId('user') })),
    async (c) => {
      const { userId } = c.req.valid('param');
      const session = c.get('session');
      const loaders = c.get('loaders');
      const visible =
        userId === session.userId || (await sharesOrg(c.get('db'), session.userId, userId));
      const user = visible ? await loaders.user(userId) : null;
      if (user === null) throw new AppError(404, 'not_found', 'user not found');
      return json(c, userDto(user));
    },
  );
}
