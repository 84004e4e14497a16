CREATE TABLE `change_log` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`org_id` text NOT NULL,
	`entity` text NOT NULL,
	`entity_id` text NOT NULL,
	`op` text NOT NULL,
	`version` integer NOT NULL,
	`data` text DEFAULT '{}' NOT NULL,
	`trace_context` text,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `change_log_org_id` ON `change_log` (`org_id`,`id`);--> statement-breakpoint
CREATE TABLE `dead_letters` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`svix_id` text NOT NULL,
	`event_type` text,
	`reason` text NOT NULL,
	`payload` text NOT NULL,
	`received_at` integer NOT NULL,
	`replayed_at` integer
);
--> statement-breakpoint
CREATE TABLE `webhook_deliveries` (
	`svix_id` text PRIMARY KEY NOT NULL,
	`claim` text NOT NULL,
	`event_type` text,
	`outcome` text NOT NULL,
	`sent_at` integer,
	`received_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `webhook_deliveries_received_at` ON `webhook_deliveries` (`received_at`);--> statement-breakpoint
DROP INDEX `memberships_org_user`;--> statement-breakpoint
CREATE UNIQUE INDEX `memberships_org_user_live` ON `memberships` (`org_id`,`user_id`) WHERE deleted_at IS NULL;