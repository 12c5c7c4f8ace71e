/*
 * channel_pg.c — notification channels read from PostgreSQL as notifier
 * endpoints (notify.h: mt_webhook_from_pg). Apart from notify.c because it
 * reads sql/'s mt_pg_endpoint: only metrond, which follows PostgreSQL,
 * links it.
 */
#include <stdio.h>

#include "mt_pgrules.h"
#include "notify.h"

void mt_webhook_from_pg(const mt_pg_endpoint *e, mt_webhook *w, const char **why, char *unknown,
                        size_t cap)
{
    *w = mt_webhook_default();
    snprintf(w->id, sizeof w->id, "%s", e->id);
    snprintf(w->name, sizeof w->name, "%s", e->name);
    snprintf(w->url, sizeof w->url, "%s", e->url);
    snprintf(w->secret, sizeof w->secret, "%s", e->secret);
    w->retry_attempts = e->retry_attempts;
    w->timeout_s = e->timeout_s;
    w->rate_limit_per_hour = e->rate_limit_per_hour;
    snprintf(w->business_id, sizeof w->business_id, "%s", e->business_id);
    w->hour_count = e->current_hour_count;
    w->hour_start_ns = e->last_reset_ns;
    mt_channel_conf *c = &w->ch;
    c->type = mt_channel_type_parse(e->channel_type);
    snprintf(c->type_name, sizeof c->type_name, "%s", e->channel_type);
    snprintf(c->ca_file, sizeof c->ca_file, "%s", e->ca_file);
    snprintf(c->mail_from, sizeof c->mail_from, "%s", e->mail_from);
    snprintf(c->mail_to, sizeof c->mail_to, "%s", e->mail_to);
    snprintf(c->username, sizeof c->username, "%s", e->username);
    snprintf(c->password, sizeof c->password, "%s", e->password);
    c->starttls = e->starttls;
    snprintf(c->routing_key, sizeof c->routing_key, "%s", e->routing_key);
    snprintf(c->sms_to, sizeof c->sms_to, "%s", e->sms_to);
    snprintf(c->body_template, sizeof c->body_template, "%s", e->body_template);
    snprintf(c->content_type, sizeof c->content_type, "%s", e->content_type);
    snprintf(c->auth_header, sizeof c->auth_header, "%s", e->auth_header);
    const char *bad = mt_channel_check(c, w->url);
    if (bad) c->type = MT_CHANNEL_UNSUPPORTED; /* counted at each notification, never sent */
    if (why) *why = bad;
    mt_webhook_parse_events(e->event_types, &w->events, unknown, cap);
}
