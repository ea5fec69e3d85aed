# One image for web, worker and beat (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Static files as production serves them: DEBUG off, so the hashed, compressed manifest storage
# (whitenoise) writes staticfiles.json. The key only satisfies start-up here; it is not in the image's env.
RUN DEBUG=0 SECRET_KEY=build-time-collectstatic-only python manage.py collectstatic --noinput
RUN useradd --system --uid 1000 app && chown -R app /app
USER app
EXPOSE 8000
CMD ["gunicorn", "retail_crm.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4", "--access-logfile", "-"]
