// Root of the UI: language and antd locale, the session state machine
// (loading → signed out → forced password change → signed in) and the router.
import { lazy, Suspense, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { App as AntApp, ConfigProvider, Spin } from 'antd';
import enUS from 'antd/locale/en_US';
import zhCN from 'antd/locale/zh_CN';
import dayjs from 'dayjs';
import 'dayjs/locale/zh-cn';
import { BrowserRouter } from 'react-router-dom';
import { api, ApiError, setApiHooks, setCsrfToken, type LoginAnswer, type Me } from './api';
import { I18nContext, normalizeLang, storeLang, storedLang, translate, type I18n, type Lang } from './i18n';
import { SessionContext, type SessionCtx } from './session';
import LoginPage from './pages/Login';
import ForcedPasswordPage from './pages/ForcedPassword';

const MainLayout = lazy(() => import('./layout/MainLayout'));

function applyDayjsLocale(lang: Lang) {
  dayjs.locale(lang === 'zh-CN' ? 'zh-cn' : 'en');
}

export default function App() {
  const [lang, setLangState] = useState<Lang>(() => storedLang());
  useEffect(() => {
    applyDayjsLocale(lang);
    document.documentElement.lang = lang;
  }, [lang]);

  return (
    <ConfigProvider
      locale={lang === 'zh-CN' ? zhCN : enUS}
      theme={{ token: { colorPrimary: '#1668dc', borderRadius: 6 } }}
    >
      <AntApp>
        <Root lang={lang} setLangState={setLangState} />
      </AntApp>
    </ConfigProvider>
  );
}

type Status = 'loading' | 'anon' | 'authed';

function Root({ lang, setLangState }: { lang: Lang; setLangState: (l: Lang) => void }) {
  const { message } = AntApp.useApp();
  const [status, setStatus] = useState<Status>('loading');
  const [me, setMeState] = useState<Me | null>(null);
  const [mustChange, setMustChange] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const statusRef = useRef<Status>('loading');
  statusRef.current = status;
  const langRef = useRef(lang);
  langRef.current = lang;

  const t = useCallback<I18n['t']>((k, v) => translate(lang, k, v), [lang]);

  const setMe = useCallback((m: Me) => {
    if (m.csrf_token) setCsrfToken(m.csrf_token);
    setMeState(m);
  }, []);

  const adoptUser = useCallback(
    (m: Me) => {
      setMe(m);
      const l = normalizeLang(m.language);
      if (l) {
        setLangState(l);
        storeLang(l);
      }
    },
    [setMe, setLangState],
  );

  useEffect(() => {
    setApiHooks({
      onError: (err: ApiError) => {
        message.error(err.message || err.code);
      },
      onUnauthenticated: () => {
        if (statusRef.current === 'authed') {
          setNotice(translate(langRef.current, 'login.sessionExpired'));
        }
        setCsrfToken(null);
        setMeState(null);
        setMustChange(false);
        setStatus('anon');
      },
      onPasswordChangeRequired: () => setMustChange(true),
    });
  }, [message]);

  useEffect(() => {
    api
      .get<Me>('/auth/me', undefined, { silent: true, noAuthRedirect: true })
      .then((m) => {
        adoptUser(m);
        setMustChange(!!m.must_change_password);
        setStatus('authed');
      })
      .catch(() => setStatus('anon'));
  }, [adoptUser]);

  const refreshMe = useCallback(async () => {
    const m = await api.get<Me>('/auth/me');
    setMe(m);
    setMustChange(!!m.must_change_password);
  }, [setMe]);

  const sessionEnded = useCallback(() => {
    setCsrfToken(null);
    setMeState(null);
    setMustChange(false);
    setNotice(null);
    setStatus('anon');
  }, []);

  const logout = useCallback(async () => {
    try {
      await api.post('/auth/logout', undefined, { silent: true, noAuthRedirect: true });
    } catch {
      // the session is gone either way
    }
    sessionEnded();
  }, [sessionEnded]);

  const onLoggedIn = useCallback(
    (ans: LoginAnswer) => {
      setCsrfToken(ans.csrf_token);
      adoptUser({ ...ans.user, csrf_token: ans.csrf_token });
      setMustChange(!!ans.must_change_password || !!ans.user?.must_change_password);
      setNotice(null);
      setStatus('authed');
    },
    [adoptUser],
  );

  const setLang = useCallback(
    (l: Lang) => {
      setLangState(l);
      storeLang(l);
      if (statusRef.current === 'authed') {
        api
          .put<Me>('/auth/profile', { language: l })
          .then((m) => m && setMe(m))
          .catch(() => undefined);
      }
    },
    [setLangState, setMe],
  );

  const adoptLang = useCallback(
    (l: Lang) => {
      setLangState(l);
      storeLang(l);
    },
    [setLangState],
  );

  const i18n = useMemo<I18n>(() => ({ lang, t, setLang, adoptLang }), [lang, t, setLang, adoptLang]);

  const session = useMemo<SessionCtx | null>(
    () => (me ? { me, setMe, refreshMe, logout, sessionEnded } : null),
    [me, setMe, refreshMe, logout, sessionEnded],
  );

  let body: React.ReactNode;
  if (status === 'loading') {
    body = <FullPageSpin />;
  } else if (status === 'anon' || !session) {
    body = <LoginPage onLoggedIn={onLoggedIn} notice={notice} />;
  } else if (mustChange) {
    body = (
      <SessionContext.Provider value={session}>
        <ForcedPasswordPage
          onDone={async () => {
            await refreshMe().catch(() => undefined);
            setMustChange(false);
          }}
        />
      </SessionContext.Provider>
    );
  } else {
    body = (
      <SessionContext.Provider value={session}>
        <Suspense fallback={<FullPageSpin />}>
          <MainLayout />
        </Suspense>
      </SessionContext.Provider>
    );
  }

  return (
    <I18nContext.Provider value={i18n}>
      <BrowserRouter>{body}</BrowserRouter>
    </I18nContext.Provider>
  );
}

export function FullPageSpin() {
  return (
    <div style={{ minHeight: '100vh', display: 'flex', alignItems: 'center', justifyContent: 'center' }}>
      <Spin size="large" />
    </div>
  );
}
