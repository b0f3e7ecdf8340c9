/*
 * Endpoint set-up and the gates before the body: method, content type,
 * API key, Origin/Referer, rate limit; then reading the body.
 */
#include "endpoint.h"

#include "csrf.h"
#include "digest.h"
#include "json_body.h"
#include "origin.h"
#include "reply.h"

namespace posthorn::http {

namespace {

constexpr const char *kDefaultEmailField = "email";

/* Field names and values become message text: UTF-8 without NUL. */
bool text_ok(std::string_view s, std::string &why)
{
	if (!utf8_valid(s)) {
		why = "fields must be UTF-8";
		return false;
	}
	if (s.find('\0') != std::string_view::npos) {
		why = "fields must not contain NUL";
		return false;
	}
	return true;
}

std::string addr_of(const std::string &mailbox)
{
	std::string name, addr;
	if (!parse_mailbox(mailbox, name, addr))
		return mailbox;
	return addr;
}

} // namespace

void EndpointState::update(const EndpointConfig &cfg)
{
	rate.set_limit(cfg.rate_limit);
	idempotency.set_capacity(cfg.idempotency_cache_size);
}

Endpoint::Endpoint(const EndpointConfig &cfg, const HttpConfig &http, bool strip_default,
    std::shared_ptr<EndpointState> state, Services svc)
    : cfg_(cfg), state_(std::move(state)), svc_(svc),
      strip_ip_(cfg.strip_client_ip.value_or(strip_default))
{
	for (const std::string &p : cfg.trusted_proxies.empty() ? http.trusted_proxies : cfg.trusted_proxies)
		if (!proxies_.add(p))
			log_warnx("endpoint %s: ignoring trusted proxy %s", cfg.path.c_str(), p.c_str());
	keys_.load(cfg.api_keys);
	std::string why;
	if (!subject_.compile(cfg.subject, why) || !body_.compile(cfg.body, why))
		fatalx("endpoint %s: template: %s", cfg.path.c_str(), why.c_str());
	subject_.names(used_);
	body_.names(used_);
	if (!cfg.honeypot.empty())
		used_.insert(cfg.honeypot);
	used_.insert(std::string(CSRF_FIELD));
	email_field_ = cfg.email_field.empty() ? kDefaultEmailField : cfg.email_field;
	reply_to_field_ = cfg.reply_to_email_field.empty() ? email_field_ : cfg.reply_to_email_field;
	envelope_from_ = addr_of(cfg.from);
	for (const std::string &t : cfg.to)
		recipients_.push_back(addr_of(t));
}

void Endpoint::handle(const std::shared_ptr<Exchange> &ex)
{
	auto rq = std::make_shared<Request>();
	rq->ex = ex;
	rq->id = new_uuid();
	rq->started = monotonic_now();
	rq->client = client_address(ex->peer(), ex->headers_joined("X-Forwarded-For"), proxies_);
	rq->html = !api() && prefers_html(ex->header("Accept"));
	if (!check_method(*rq) || !check_content_type(*rq) || !check_api_key(*rq) ||
	    !check_origin(*rq) || !check_rate(*rq) || !read_body(*rq))
		return;
	if (honeypot(*rq) || !check_csrf(*rq) || !validate(*rq) || !claim_idempotency(*rq))
		return;
	submit(rq);
}

void Endpoint::refuse(Request &rq, int status, std::string_view code, std::string_view message)
{
	finish(rq, json_error(status, code, message), code);
}

bool Endpoint::check_method(Request &rq)
{
	if (std::string_view(rq.ex->method()) == "POST")
		return true;
	Reply r = json_error(405, "method_not_allowed", "method not allowed");
	r.headers.emplace_back("Allow", "POST");
	finish(rq, std::move(r), "method_not_allowed");
	return false;
}

bool Endpoint::check_content_type(Request &rq)
{
	MediaType mt;
	const char *ct = rq.ex->header("Content-Type");
	bool ok = ct && media_type_parse(ct, mt);
	if (ok && api())
		ok = mt.type == "application/json";
	else if (ok)
		ok = mt.type == "application/x-www-form-urlencoded" || mt.type == "multipart/form-data";
	if (!ok) {
		refuse(rq, 415, "unsupported_media_type", api() ?
		    "expected Content-Type: application/json" :
		    "expected application/x-www-form-urlencoded or multipart/form-data");
		return false;
	}
	rq.media_type = mt.type;
	if (mt.type == "multipart/form-data") {
		rq.boundary = mt.params["boundary"];
		if (rq.boundary.empty() || rq.boundary.size() > 70) {
			refuse(rq, 400, "invalid_body", "multipart/form-data needs a boundary");
			return false;
		}
	}
	return true;
}

bool Endpoint::check_api_key(Request &rq)
{
	if (!api())
		return true;
	std::string addr = rate_key(rq.client);
	uint64_t wait = 0;
	double now = monotonic_now();
	if (svc_.lockout.locked(addr, now, wait)) {
		svc_.stats.add("posthorn_rate_limited_total", {cfg_.path});
		log(LogLevel::warn, "rate_limited", rq, LogField("reason", "auth_lockout"),
		    LogField("retry_after", wait));
		Reply r = json_error(429, "auth_locked", "too many failed authentication attempts");
		r.headers.emplace_back("Retry-After", std::to_string(wait));
		finish(rq, std::move(r));
		return false;
	}
	std::string_view token;
	if (bearer_token(rq.ex->header("Authorization"), token))
		rq.key_id = keys_.match(token);
	if (!rq.key_id.empty())
		return true;
	svc_.lockout.failed(addr, now);
	svc_.stats.add("posthorn_auth_failed_total", {cfg_.path});
	log(LogLevel::warn, "auth_failed", rq,
	    LogField("reason", token.empty() ? "missing bearer token" : "unknown key"));
	Reply r = json_error(401, "unauthorized", "missing or invalid API key");
	r.headers.emplace_back("WWW-Authenticate", "Bearer");
	finish(rq, std::move(r));
	return false;
}

bool Endpoint::check_origin(Request &rq)
{
	if (api() || cfg_.allowed_origins.empty())
		return true;
	OriginResult res = origin_check(rq.ex->header("Origin"), rq.ex->header("Referer"),
	    cfg_.allowed_origins);
	if (res == OriginResult::ok)
		return true;
	svc_.stats.add("posthorn_spam_blocked_total", {cfg_.path, "origin"});
	log(LogLevel::info, "spam_blocked", rq, LogField("kind", "origin"),
	    LogField("reason", to_string(res)));
	refuse(rq, 403, "origin_not_allowed", "origin not allowed");
	return false;
}

bool Endpoint::check_rate(Request &rq)
{
	uint64_t wait = 0;
	const std::string &key = api() ? rq.key_id : rate_key(rq.client);
	if (state_->rate.take(key, monotonic_now(), wait))
		return true;
	svc_.stats.add("posthorn_rate_limited_total", {cfg_.path});
	log(LogLevel::info, "rate_limited", rq, LogField("retry_after", wait));
	Reply r = json_error(429, "rate_limited", "rate limit exceeded");
	r.headers.emplace_back("Retry-After", std::to_string(wait));
	finish(rq, std::move(r), "rate_limited");
	return false;
}

bool Endpoint::read_body(Request &rq)
{
	std::string_view body = rq.ex->body();
	if (body.size() > cfg_.max_body_size) {
		log(LogLevel::info, "body_too_large", rq, LogField("size", body.size()),
		    LogField("limit", cfg_.max_body_size));
		refuse(rq, 413, "body_too_large", "request body too large");
		return false;
	}
	return api() ? read_json(rq, body) : read_form(rq, body);
}

bool Endpoint::read_form(Request &rq, std::string_view body)
{
	FormData form;
	std::string why;
	bool ok = rq.media_type == "multipart/form-data" ?
	    form_multipart_parse(body, rq.boundary, form, why) :
	    form_urlencoded_parse(body, form, why);
	for (size_t i = 0; ok && i < form.fields.size(); i++)
		ok = text_ok(form.fields[i].name, why) && text_ok(form.fields[i].value, why);
	for (size_t i = 0; ok && i < form.files.size(); i++)
		ok = text_ok(form.files[i].field, why) && text_ok(form.files[i].filename, why);
	if (!ok) {
		refuse(rq, 400, "invalid_body", why);
		return false;
	}
	rq.fields = fields_join(form.fields);
	if (!cfg_.attachments)
		return true; /* file parts are not fields, and not wanted */
	for (FilePart &f : form.files) {
		if (rq.files.size() >= cfg_.max_attachments) {
			refuse(rq, 413, "too_many_attachments", "too many attachments");
			return false;
		}
		if (f.data.size() > cfg_.max_attachment_size) {
			refuse(rq, 413, "attachment_too_large", "attachment too large");
			return false;
		}
		rq.files.push_back(std::move(f));
	}
	return true;
}

bool Endpoint::read_json(Request &rq, std::string_view body)
{
	JsonBody j;
	std::string why;
	if (!json_body_parse(body, j, why)) {
		refuse(rq, 400, "invalid_json", why);
		return false;
	}
	rq.fields = std::move(j.fields);
	rq.has_override = j.has_to_override;
	rq.to_override = std::move(j.to_override);
	return true;
}

} // namespace posthorn::http
