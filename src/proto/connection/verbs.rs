//! One method per command, aiosmtpd's `smtp_*`: each checks its preconditions and
//! argument, then replies or asks the application.

use std::fmt::Write as _;

use super::super::BodyType;
use super::super::address::{ParsedPath, parse_path_checked, parse_plain_path};
use super::super::command::{
    self, HELP_LIST, HELP_LIST_LMTP, HELP_LIST_LMTP_TLS, HELP_LIST_TLS, Verb,
};
use super::super::dsn::DsnError;
use super::super::params::{self, MailChecks, ParamError};
use super::super::replies;
use super::{Ask, Connection};

impl Connection {
    /// Runs a command that passed the line checks.
    pub(super) fn run(&mut self, verb: Verb, arg: Option<&str>) {
        match verb {
            Verb::Helo => self.helo(arg),
            Verb::Ehlo | Verb::Lhlo => self.ehlo(arg),
            Verb::Mail => self.mail(arg),
            Verb::Rcpt => self.rcpt(arg),
            Verb::Data => self.data(arg),
            Verb::Rset => {
                if arg.is_some() {
                    return self.syntax_error(verb);
                }
                self.reset_envelope();
                self.ask(Ask::Rset);
            }
            Verb::Noop => {
                let arg = arg.map(|a| self.pool.string(a));
                self.ask(Ask::Noop { arg });
            }
            Verb::Quit => {
                if arg.is_some() {
                    return self.syntax_error(verb);
                }
                self.ask(Ask::Quit);
            }
            Verb::Vrfy => self.vrfy(arg),
            Verb::Expn => self.push(replies::EXPN_NOT_IMPLEMENTED),
            Verb::Help => self.help(arg),
            Verb::StartTls => self.starttls(arg),
            Verb::Auth => self.auth(arg),
            // Read by `bdat` before the line's checks (its chunk follows it).
            Verb::Bdat => {}
        }
    }

    fn helo(&mut self, arg: Option<&str>) {
        let Some(hostname) = arg else {
            return self.syntax_error(Verb::Helo);
        };
        self.reset_envelope();
        self.session.extended_smtp = false;
        let hostname = self.pool.string(hostname);
        self.ask(Ask::Helo { hostname });
    }

    /// EHLO, and LMTP's LHLO: the extension list the hook may edit.
    fn ehlo(&mut self, arg: Option<&str>) {
        let Some(hostname) = arg else {
            // aiosmtpd's LHLO is its EHLO, syntax text included.
            return self.syntax_error(Verb::Ehlo);
        };
        self.reset_envelope();
        self.session.extended_smtp = true;
        let mut extensions = self.pool.extensions();
        if let Some(limit) = self.config.data_size_limit {
            let mut line = self.pool.string("SIZE ");
            let _ = write!(line, "{limit}");
            extensions.push(line);
        }
        extensions.push(self.pool.string("8BITMIME"));
        let ext = self.config.extensions;
        if ext.binary_mime() {
            extensions.push(self.pool.string("BINARYMIME"));
        }
        if ext.pipelining {
            extensions.push(self.pool.string("PIPELINING"));
        }
        if ext.chunking {
            extensions.push(self.pool.string("CHUNKING"));
        }
        if ext.enhanced_status_codes {
            extensions.push(self.pool.string("ENHANCEDSTATUSCODES"));
        }
        if ext.dsn {
            extensions.push(self.pool.string("DSN"));
        }
        if self.config.enable_smtputf8 {
            extensions.push(self.pool.string("SMTPUTF8"));
        }
        if ext.requiretls && self.is_tls() {
            extensions.push(self.pool.string("REQUIRETLS"));
        }
        if let Some(limits) = self.limits_extension() {
            extensions.push(limits);
        }
        if self.config.starttls && !self.is_tls() {
            extensions.push(self.pool.string("STARTTLS"));
        }
        if self.auth_offered() {
            extensions.push(self.auth_extension());
        }
        extensions.push(self.pool.string("HELP"));
        let hostname = self.pool.string(hostname);
        self.ask(Ask::Ehlo {
            hostname,
            extensions,
        });
    }

    fn mail(&mut self, arg: Option<&str>) {
        if self.helo_needed() || self.auth_needed() {
            return;
        }
        let Some((address, options, raw)) = self.parse_command_path(Verb::Mail, arg, "FROM:")
        else {
            return;
        };
        if self.envelope.mail_from.is_some() {
            return self.push(replies::NESTED_MAIL);
        }
        if self
            .config
            .max_messages_per_connection
            .is_some_and(|max| self.messages >= max)
        {
            return self.push_closing(replies::TOO_MANY_MESSAGES);
        }
        let checks = MailChecks {
            smtputf8: self.config.enable_smtputf8,
            size_limit: self.config.data_size_limit,
            extensions: self.config.extensions,
            tls: self.is_tls(),
        };
        let refusal = match params::check_mail(&options, raw, &checks, &mut self.envelope.smtp_utf8)
        {
            Ok(typed) => {
                self.pending_mail = typed;
                return self.ask(Ask::Mail { address, options });
            }
            Err(ParamError::Syntax) => return self.syntax_error(Verb::Mail),
            Err(ParamError::Dsn(e)) => return self.push_dsn_error(e),
            Err(ParamError::Body) => replies::BAD_BODY,
            Err(ParamError::BodyWithBinary) => replies::BAD_BODY_BINARY,
            Err(ParamError::SmtpUtf8Argument) => replies::SMTPUTF8_ARGUMENT,
            Err(ParamError::SmtpUtf8Disabled) => replies::SMTPUTF8_DISABLED,
            Err(ParamError::TooBig) => replies::SIZE_EXCEEDED,
            Err(ParamError::RequireTlsWithoutTls) => replies::REQUIRETLS_NEEDS_TLS,
            Err(ParamError::Unknown) => replies::MAIL_PARAMS_UNKNOWN,
        };
        self.push(refusal);
    }

    fn push_dsn_error(&mut self, error: DsnError) {
        let (template, name) = match error {
            DsnError::Duplicate(name) => (replies::DSN_DUPLICATE, name),
            DsnError::Invalid(name) => (replies::DSN_INVALID, name),
        };
        template.push(name.as_bytes(), &mut self.output.bytes);
    }

    /// LIMITS (RFC 9422) from the configured limits, if it is on and one is set.
    fn limits_extension(&mut self) -> Option<String> {
        if !self.config.extensions.limits {
            return None;
        }
        let rcpt_max = self.config.recipient_limit;
        let mail_max = self.config.mail_limit();
        if rcpt_max.is_none() && mail_max.is_none() {
            return None;
        }
        let mut line = self.pool.string("LIMITS");
        if let Some(n) = rcpt_max {
            let _ = write!(line, " RCPTMAX={n}");
        }
        if let Some(n) = mail_max {
            let _ = write!(line, " MAILMAX={n}");
        }
        Some(line)
    }

    fn rcpt(&mut self, arg: Option<&str>) {
        if self.helo_needed() || self.auth_needed() {
            return;
        }
        if self.envelope.mail_from.is_none() {
            return self.push(replies::NEED_MAIL);
        }
        let Some((address, options, raw)) = self.parse_command_path(Verb::Rcpt, arg, "TO:") else {
            return;
        };
        match params::check_rcpt(&options, raw, self.config.extensions) {
            Ok(_) if self.recipients_full() => self.push(replies::TOO_MANY_RECIPIENTS),
            Ok(dsn) => {
                self.pending_rcpt = dsn;
                self.ask(Ask::Rcpt { address, options });
            }
            Err(ParamError::Unknown) => self.push(replies::RCPT_PARAMS_UNKNOWN),
            Err(ParamError::Dsn(e)) => self.push_dsn_error(e),
            Err(_) => self.syntax_error(Verb::Rcpt),
        }
    }

    /// The transaction has [`Config::recipient_limit`](super::super::Config) recipients.
    fn recipients_full(&self) -> bool {
        self.config
            .recipient_limit
            .is_some_and(|limit| self.envelope.rcpt_tos.len() >= limit)
    }

    fn data(&mut self, arg: Option<&str>) {
        if self.helo_needed() || self.auth_needed() {
            return;
        }
        if self.envelope.rcpt_tos.is_empty() {
            return self.push(replies::NEED_RCPT);
        }
        if arg.is_some() {
            return self.syntax_error(Verb::Data);
        }
        if self.chunked.is_some() {
            return self.push(replies::DATA_AFTER_BDAT);
        }
        if self.envelope.body_type == Some(BodyType::BinaryMime) {
            return self.push(replies::BINARYMIME_NEEDS_BDAT);
        }
        self.push(replies::START_DATA);
        self.start_message();
        self.read_data();
    }

    fn vrfy(&mut self, arg: Option<&str>) {
        if self.auth_needed() {
            return;
        }
        let Some(arg) = arg else {
            return self.syntax_error(Verb::Vrfy);
        };
        let parsed = match parse_path_checked(arg) {
            Ok(p) => p,
            // Python raised something other than HeaderParseError: aiosmtpd's
            // generic exception reply.
            Err(exc) => {
                return replies::push_exception(&exc.to_string(), &mut self.output.bytes);
            }
        };
        match parsed {
            ParsedPath::Address { addr, .. } if !self.local_part_too_long(&addr) => {
                self.ask(Ask::Vrfy { address: addr });
            }
            ParsedPath::Empty => self.ask(Ask::Vrfy {
                address: String::new(),
            }),
            _ => replies::COULD_NOT_VRFY.push(arg.as_bytes(), &mut self.output.bytes),
        }
    }

    fn help(&mut self, arg: Option<&str>) {
        if self.auth_needed() {
            return;
        }
        let mut code = 250;
        if let Some(arg) = arg {
            let upper = arg.to_uppercase();
            let starttls = self.config.starttls;
            let lmtp = self.config.lmtp;
            if let Some((text, ext)) = Verb::from_upper(upper.as_bytes())
                .filter(|v| *v != Verb::StartTls || starttls)
                .filter(|v| match v {
                    Verb::Lhlo => lmtp,
                    Verb::Helo | Verb::Ehlo => !lmtp,
                    _ => true,
                })
                .and_then(Verb::syntax)
            {
                let ext = if self.session.extended_smtp { ext } else { "" };
                return replies::push_syntax(250, text, ext, &mut self.output.bytes);
            }
            code = 501;
        }
        let list = match (self.config.lmtp, self.config.starttls) {
            (false, false) => HELP_LIST,
            (false, true) => HELP_LIST_TLS,
            (true, false) => HELP_LIST_LMTP,
            (true, true) => HELP_LIST_LMTP_TLS,
        };
        replies::push_supported_commands(code, list, &mut self.output.bytes);
    }

    fn starttls(&mut self, arg: Option<&str>) {
        if arg.is_some() {
            return self.syntax_error(Verb::StartTls);
        }
        if !self.config.starttls {
            return self.push(replies::TLS_NOT_AVAILABLE);
        }
        if self.is_tls() {
            // aiosmtpd answers 220 and breaks the connection with a nested
            // handshake; RFC 3207 forbids a second STARTTLS.
            return self.push(replies::TLS_ALREADY_ACTIVE);
        }
        self.push(replies::READY_FOR_TLS);
        self.request_tls();
    }

    /// MAIL, RCPT and DATA need a greeting first.
    fn helo_needed(&mut self) -> bool {
        if self.session.host_name.is_none() {
            self.push(replies::SEND_HELO_FIRST);
            return true;
        }
        false
    }

    /// aiosmtpd's `check_auth_needed`.
    fn auth_needed(&mut self) -> bool {
        if self.config.auth_required && !self.session.authenticated {
            self.push(replies::AUTH_REQUIRED);
            return true;
        }
        false
    }

    /// `501 Syntax: ...` for `verb`.
    pub(super) fn syntax_error(&mut self, verb: Verb) {
        if let Some((text, ext)) = verb.syntax() {
            let ext = if self.session.extended_smtp { ext } else { "" };
            replies::push_syntax(501, text, ext, &mut self.output.bytes);
        }
    }

    fn local_part_too_long(&self, addr: &str) -> bool {
        let local = addr.rsplit_once('@').map_or("", |(l, _)| l);
        self.config
            .local_part_limit
            .is_some_and(|limit| limit > 0 && local.chars().count() > limit)
    }

    /// Parses a MAIL/RCPT path: the address, the parameters uppercased (as
    /// aiosmtpd lists them) and as sent; on error pushes the reply and returns
    /// `None`.
    fn parse_command_path<'a>(
        &mut self,
        verb: Verb,
        arg: Option<&'a str>,
        keyword: &str,
    ) -> Option<(String, Vec<String>, &'a str)> {
        let Some(rest) = arg.and_then(|a| strip_keyword(a, keyword)) else {
            self.syntax_error(verb);
            return None;
        };
        if let Some((addr, params)) = parse_plain_path(rest)
            && !self.local_part_too_long(addr)
            && (self.session.extended_smtp || params.is_empty())
        {
            let addr = self.pool.string(addr);
            let options = self.pool.split_options(params);
            return self
                .checked_bytes(verb, addr, options)
                .map(|(a, o)| (a, o, params));
        }
        let parsed = match parse_path_checked(rest) {
            Ok(p) => p,
            Err(exc) => {
                replies::push_exception(&exc.to_string(), &mut self.output.bytes);
                return None;
            }
        };
        let (addr, params) = match parsed {
            ParsedPath::Malformed => {
                self.push(replies::MALFORMED_ADDRESS);
                return None;
            }
            ParsedPath::Empty => {
                self.syntax_error(verb);
                return None;
            }
            ParsedPath::Address { addr, rest } => (addr, rest),
        };
        if self.local_part_too_long(&addr) {
            self.push(replies::MALFORMED_ADDRESS);
            return None;
        }
        if addr.is_empty() || (!self.session.extended_smtp && !params.is_empty()) {
            self.syntax_error(verb);
            return None;
        }
        let options = self.pool.split_options(params);
        self.checked_bytes(verb, addr, options)
            .map(|(a, o)| (a, o, params))
    }

    /// With [`Config::refuse_control_characters`](super::super::Config), an
    /// address holding a control character (NUL, CR, LF, TAB, DEL...) is
    /// refused: RFC 5321's address syntax has none, and C code or a file
    /// system given such an address would cut or misread it.
    fn checked_bytes(
        &mut self,
        verb: Verb,
        address: String,
        options: Vec<String>,
    ) -> Option<(String, Vec<String>)> {
        if !self.config.refuse_control_characters || !address.bytes().any(|b| b < 0x20 || b == 0x7f)
        {
            return Some((address, options));
        }
        self.push(if verb == Verb::Mail {
            replies::CONTROL_IN_SENDER
        } else {
            replies::CONTROL_IN_RECIPIENT
        });
        self.pool.keep(address);
        self.pool.keep_list(options);
        None
    }
}

/// aiosmtpd's `_strip_command_keyword`.
fn strip_keyword<'a>(arg: &'a str, keyword: &str) -> Option<&'a str> {
    let head = arg.get(..keyword.len())?;
    if head.eq_ignore_ascii_case(keyword) {
        Some(command::py_strip(&arg[keyword.len()..]))
    } else {
        None
    }
}
